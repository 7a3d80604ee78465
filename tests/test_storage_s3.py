"""S3 on the cluster path: fail fast on an unusable store, datasets from a bucket by checksum."""

import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import numpy as np
import pytest
from stack.servers import moto_bucket

from dcflow.cli import main
from dcflow.config import DatasetConfig
from dcflow.data import load_dataset
from dcflow.errors import DataError, ServiceError
from dcflow.storage import check_s3_writable


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with moto_bucket(tmp_path_factory.mktemp("moto"), "data") as url:
        yield url


def test_unreachable_endpoint_fails_before_any_stage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    started = time.monotonic()
    code = main(["run", "aspc-da", "--dataset", "fake", "--artifacts", "s3://bucket/prefix"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == ServiceError.exit_code
    assert len(err) == 1 and "artifact store s3://bucket/prefix is unusable" in err[0]
    assert not (tmp_path / ".dcflow" / "logs").exists()  # no stage was started
    assert time.monotonic() - started < 60


def test_missing_bucket_and_a_writable_one(s3: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3)
    with pytest.raises(ServiceError, match="weights store s3://nope/w is not writable"):
        check_s3_writable("s3://nope/w", "weights store")
    check_s3_writable("s3://data/runs", "artifact store")
    objects = boto3.client("s3", endpoint_url=s3).list_objects_v2(Bucket="data")
    assert objects.get("KeyCount", 0) == 0  # the probe object is removed


def test_dataset_from_a_bucket_is_pinned_and_checked(
    s3: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3)
    monkeypatch.setenv("DCFLOW_DATA_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (40, 8, 8), dtype=np.uint8)
    y = np.repeat(np.arange(4), 10)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    client = boto3.client("s3", endpoint_url=s3)
    client.upload_file(str(tmp_path / "d.npz"), "data", "sets/d.npz")
    assert main(["config", "aspc-da", "--dataset", "s3://data/sets/d.npz"]) == 0
    shown = capsys.readouterr().out
    assert "name: s3://data/sets/d.npz" in shown
    sha = shown.split("sha256: ")[1].split()[0]
    data = load_dataset(DatasetConfig(name="s3://data/sets/d.npz", sha256=sha))
    assert data.n == 40 and data.n_clusters == 4
    np.testing.assert_array_equal(data.y, y)
    # the object changes under a running pipeline: the next stage refuses it
    np.savez(tmp_path / "d2.npz", x=x[::-1], y=y)
    client.upload_file(str(tmp_path / "d2.npz"), "data", "sets/d.npz")
    for f in (tmp_path / "cache").iterdir():
        f.unlink()
    with pytest.raises(DataError, match="sha256 mismatch"):
        load_dataset(DatasetConfig(name="s3://data/sets/d.npz", sha256=sha))
    assert not any((tmp_path / "cache").iterdir())  # nothing half-trusted left behind
