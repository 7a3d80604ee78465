from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dcflow.errors import ServiceError, WeightsError
from dcflow.storage import (
    CURVES_FILE,
    SHA_SUFFIX,
    WEIGHTS_FILE,
    WeightsStore,
    fetch_weights,
    sha256_file,
    split_s3,
    upload_dir,
)

MOTO = Path(sys.executable).parent / "moto_server"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def weights_file(tmp_path: Path) -> Path:
    path = tmp_path / "local" / "w.pt"
    path.parent.mkdir()
    path.write_bytes(b"\x00weights\xff" * 100)
    return path


def test_sha256_file(tmp_path: Path) -> None:
    path = tmp_path / "f"
    data = os.urandom(3 * (1 << 20) + 17)  # more than one read block
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_split_s3() -> None:
    assert split_s3("s3://bucket/a/b/c.pt") == ("bucket", "a/b/c.pt")
    assert split_s3("s3://bucket") == ("bucket", "")


@pytest.mark.parametrize("scheme", ["", "file://"])
def test_local_store_publish_lookup_round_trip(
    tmp_path: Path, weights_file: Path, scheme: str
) -> None:
    store = WeightsStore(f"{scheme}{tmp_path / 'store'}/")
    assert store.lookup("aspc-da", "k1") is None
    stored = store.publish("aspc-da", "k1", weights_file)
    assert stored.sha256 == sha256_file(weights_file)
    path = tmp_path / "store" / "aspc-da" / "k1" / WEIGHTS_FILE
    assert Path(stored.uri) == path.resolve()
    assert path.read_bytes() == weights_file.read_bytes()
    sidecar = path.with_name(WEIGHTS_FILE + SHA_SUFFIX)
    assert sidecar.read_text().strip() == stored.sha256
    assert sorted(p.name for p in path.parent.iterdir()) == [
        CURVES_FILE,
        WEIGHTS_FILE,
        WEIGHTS_FILE + SHA_SUFFIX,
    ]
    assert store.lookup("aspc-da", "k1") == stored
    assert store.lookup("aspc-da", "k2") is None
    assert store.lookup("other", "k1") is None


def test_lookup_needs_the_sidecar(tmp_path: Path, weights_file: Path) -> None:
    store = WeightsStore(str(tmp_path / "store"))
    store.publish("m", "k", weights_file)
    (tmp_path / "store" / "m" / "k" / (WEIGHTS_FILE + SHA_SUFFIX)).unlink()
    assert store.lookup("m", "k") is None


def test_a_second_publish_of_a_key_keeps_the_first(tmp_path: Path, weights_file: Path) -> None:
    # two runs of one key side by side (compare's option rows): the loser must report the sha256
    # of the file that is there, not of its own copy (it used to overwrite the winner's file, whose
    # stages then failed with "sha256 mismatch")
    store = WeightsStore(str(tmp_path / "store"))
    first = store.publish("m", "k", weights_file)
    other = tmp_path / "other.pt"
    other.write_bytes(b"same weights, other bytes (a timestamp)")
    second = store.publish("m", "k", other)
    assert second == first
    assert sha256_file(first.uri) == first.sha256 == sha256_file(weights_file)
    assert sorted(p.name for p in Path(first.uri).parent.iterdir() if p.name.startswith(".")) == []


@pytest.mark.parametrize("prefix", ["", "file://"])
def test_fetch_verifies_and_copies(tmp_path: Path, weights_file: Path, prefix: str) -> None:
    dest = tmp_path / "out" / "weights.pt"
    got = fetch_weights(f"{prefix}{weights_file}", sha256_file(weights_file).upper(), dest)
    assert got == dest and dest.read_bytes() == weights_file.read_bytes()
    assert [p.name for p in dest.parent.iterdir()] == ["weights.pt"]


def test_fetch_sha_mismatch_leaves_no_destination(tmp_path: Path, weights_file: Path) -> None:
    dest = tmp_path / "out" / "weights.pt"
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        fetch_weights(str(weights_file), "0" * 64, dest)
    assert list(dest.parent.iterdir()) == []


def test_fetch_missing_file(tmp_path: Path) -> None:
    dest = tmp_path / "out" / "weights.pt"
    with pytest.raises(WeightsError, match="not found"):
        fetch_weights(str(tmp_path / "nope.pt"), "0" * 64, dest)
    assert list(dest.parent.iterdir()) == []


def test_upload_dir_to_a_directory(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    (src / "a" / "x.txt").write_text("x")
    (src / "y.txt").write_text("y")
    assert upload_dir(src, str(tmp_path / "dst")) == 2
    assert (tmp_path / "dst" / "a" / "x.txt").read_text() == "x"
    assert (tmp_path / "dst" / "y.txt").read_text() == "y"


def _aws_env(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture(scope="module")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not MOTO.is_file() and shutil.which("moto_server") is None:
        pytest.skip("moto_server is not installed (pip install 'moto[server]')")
    exe = str(MOTO) if MOTO.is_file() else str(shutil.which("moto_server"))
    port = _free_port()
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("wb")
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"moto_server did not start (exit code {proc.poll()})")
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture
def s3_bucket(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    import boto3

    _aws_env(monkeypatch, moto_endpoint)
    name = f"weights-{os.urandom(4).hex()}"
    boto3.client("s3", endpoint_url=moto_endpoint).create_bucket(Bucket=name)
    return name


def test_s3_store_round_trip(s3_bucket: str, weights_file: Path, tmp_path: Path) -> None:
    store = WeightsStore(f"s3://{s3_bucket}/cache/")
    assert store.lookup("aspc-da", "k1") is None
    stored = store.publish("aspc-da", "k1", weights_file)
    assert stored.uri == f"s3://{s3_bucket}/cache/aspc-da/k1/{WEIGHTS_FILE}"
    assert stored.sha256 == sha256_file(weights_file)
    assert store.lookup("aspc-da", "k1") == stored
    assert store.lookup("aspc-da", "k2") is None
    dest = tmp_path / "fetched" / "weights.pt"
    fetch_weights(stored.uri, stored.sha256, dest)
    assert dest.read_bytes() == weights_file.read_bytes()


def test_s3_fetch_mismatch_and_missing(s3_bucket: str, weights_file: Path, tmp_path: Path) -> None:
    stored = WeightsStore(f"s3://{s3_bucket}/p").publish("m", "k", weights_file)
    dest = tmp_path / "fetched" / "weights.pt"
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        fetch_weights(stored.uri, "f" * 64, dest)
    assert list(dest.parent.iterdir()) == []
    with pytest.raises(ServiceError, match="S3 download failed"):
        fetch_weights(f"s3://{s3_bucket}/p/m/nope/{WEIGHTS_FILE}", stored.sha256, dest)
    assert list(dest.parent.iterdir()) == []


def test_s3_missing_bucket_is_a_miss(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _aws_env(monkeypatch, moto_endpoint)
    assert WeightsStore("s3://no-such-bucket-here/x").lookup("m", "k") is None


def test_s3_upload_dir(s3_bucket: str, tmp_path: Path) -> None:
    import boto3

    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    (src / "a" / "x.txt").write_text("x")
    (src / "y.txt").write_text("y")
    assert upload_dir(src, f"s3://{s3_bucket}/run1") == 2
    listing = boto3.client("s3").list_objects_v2(Bucket=s3_bucket, Prefix="run1/")
    assert sorted(o["Key"] for o in listing["Contents"]) == ["run1/a/x.txt", "run1/y.txt"]


def test_unreachable_s3_is_a_service_error(
    monkeypatch: pytest.MonkeyPatch, weights_file: Path, tmp_path: Path
) -> None:
    _aws_env(monkeypatch, f"http://127.0.0.1:{_free_port()}")  # nothing listens there
    store = WeightsStore("s3://bucket/prefix")
    started = time.monotonic()
    with pytest.raises(ServiceError, match="S3 lookup failed"):
        store.lookup("m", "k")
    with pytest.raises(ServiceError, match="S3 upload failed"):
        store.publish("m", "k", weights_file)
    with pytest.raises(ServiceError, match="S3 download failed"):
        fetch_weights("s3://bucket/prefix/m/k/weights.pt", "0" * 64, tmp_path / "d" / "w.pt")
    assert time.monotonic() - started < 60
    assert list((tmp_path / "d").iterdir()) == []


def test_pretrain_curves_are_stored_beside_the_weights(tmp_path: Path, weights_file: Path) -> None:
    from dcflow.storage import fetch_curves

    curves = {"loss": [[1, 0.5], [2, 0.25]]}
    stored = WeightsStore(str(tmp_path / "store")).publish("m", "k", weights_file, curves=curves)
    assert fetch_curves(stored.uri) == curves
    assert fetch_curves(str(tmp_path / "elsewhere" / WEIGHTS_FILE)) == {}  # absent: none
    assert fetch_curves("") == {}
