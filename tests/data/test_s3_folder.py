"""Image folders and file lists in a bucket (moto on 127.0.0.1): same arrays, pinned listings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from PIL import Image
from stack.servers import moto_bucket

import dcflow.storage
from dcflow.cli import main
from dcflow.config import DatasetConfig
from dcflow.data import load_dataset
from dcflow.data.images import DecodeSettings, absolute_source, load_image_source, pin_source
from dcflow.errors import DataError, ServiceError
from dcflow.storage import S3Object

BUCKET = "imgs"


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with moto_bucket(tmp_path_factory.mktemp("moto"), BUCKET) as url:
        yield url


@pytest.fixture
def client(s3: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3)
    monkeypatch.setenv("DCFLOW_DATA_CACHE", str(tmp_path / "objects"))
    monkeypatch.setenv("DCFLOW_CACHE_DIR", str(tmp_path / "decoded"))
    return boto3.client("s3", endpoint_url=s3)


def _png(path: Path, value: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(value).integers(0, 256, (8, 12), dtype=np.uint8)
    Image.fromarray(pixels, "L").save(path)
    return path


def _pets(root: Path, client: Any, prefix: str) -> Path:
    """Three cats and three dogs, locally under ``root`` and in the bucket under ``prefix``."""
    for i in range(3):
        _png(root / "cats" / f"c{i}.png", i)
        _png(root / "dogs" / f"d{i}.png", 10 + i)
    (root / "notes.txt").write_text("not an image")
    for path in root.rglob("*"):
        if path.is_file():
            key = f"{prefix}/{path.relative_to(root).as_posix()}"
            client.upload_file(str(path), BUCKET, key)
    return root


def _count_downloads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Keys that :func:`dcflow.storage.download_listed` fetches from now on."""
    fetched: list[str] = []
    real = dcflow.storage.download_listed

    def counting(bucket: str, items: list[tuple[S3Object, Path]], workers: int = 8) -> None:
        fetched.extend(obj.key for obj, _ in items)
        real(bucket, items, workers)

    monkeypatch.setattr(dcflow.storage, "download_listed", counting)
    return fetched


def test_a_prefix_decodes_to_the_same_arrays_as_the_local_folder(
    client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = _pets(tmp_path / "pets", client, "sets/pets")
    from_bucket = load_image_source(f"folder:s3://{BUCKET}/sets/pets", DecodeSettings())
    monkeypatch.setenv("DCFLOW_CACHE_DIR", str(tmp_path / "decoded-local"))  # no shared entry
    from_disk = load_image_source(f"folder:{local}", DecodeSettings())
    assert from_bucket.x.dtype == np.uint8 and from_bucket.x.shape == (6, 8, 12, 1)
    np.testing.assert_array_equal(from_bucket.x, from_disk.x)
    names = [f"cats/c{i}.png" for i in range(3)] + [f"dogs/d{i}.png" for i in range(3)]
    assert list(from_bucket.files) == list(from_disk.files) == names
    bare = load_dataset(DatasetConfig(name=f"s3://{BUCKET}/sets/pets/", n_clusters=2))
    assert list(bare.files) == names and bare.y is None  # a bare prefix is the folder form


def test_subfolder_labels_and_the_run_config_pin(
    client: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _pets(tmp_path / "pets", client, "labelled")
    name = absolute_source(f"s3://{BUCKET}/labelled")
    assert name == f"folder:s3://{BUCKET}/labelled/"
    data = load_dataset(DatasetConfig(name=name, labels_from="subfolders", n_clusters=2))
    assert data.y is not None and data.y.tolist() == [0, 0, 0, 1, 1, 1]
    args = ["config", "aspc-da", "--dataset", f"s3://{BUCKET}/labelled"]
    assert main([*args, "--set", "dataset.labels_from=subfolders"]) == 0
    shown = capsys.readouterr().out
    assert f"name: folder:s3://{BUCKET}/labelled/" in shown
    assert f"sha256: {pin_source(name)}" in shown


def test_empty_prefix_and_missing_bucket_are_one_line(client: Any) -> None:
    client.put_object(Bucket=BUCKET, Key="docs/readme.txt", Body=b"no images")
    with pytest.raises(DataError) as empty:
        load_image_source(f"folder:s3://{BUCKET}/docs", DecodeSettings())
    assert str(empty.value).startswith(f"no images under s3://{BUCKET}/docs/ (png, jpg")
    with pytest.raises(ServiceError) as missing:
        pin_source("folder:s3://no-such-bucket/x/")
    for message in (str(empty.value), str(missing.value)):
        assert "\n" not in message
    assert "NoSuchBucket" in str(missing.value)


def test_a_changed_listing_fails_against_the_pinned_digest(client: Any, tmp_path: Path) -> None:
    _pets(tmp_path / "pets", client, "moving")
    name = f"folder:s3://{BUCKET}/moving/"
    pinned = pin_source(name)
    assert pinned is not None and len(pinned) == 64
    assert load_image_source(name, DecodeSettings(), pinned).x.shape[0] == 6
    client.upload_file(str(_png(tmp_path / "new.png", 50)), BUCKET, "moving/cats/c9.png")
    with pytest.raises(DataError, match="the listing changed since the run was configured"):
        load_dataset(DatasetConfig(name=name, sha256=pinned, n_clusters=2))
    assert pin_source(name) != pinned


def test_a_second_load_downloads_nothing_and_a_rewrite_only_itself(
    client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _pets(tmp_path / "pets", client, "cached")
    fetched = _count_downloads(monkeypatch)
    name = f"folder:s3://{BUCKET}/cached"
    first = load_image_source(name, DecodeSettings())
    assert len(fetched) == 6
    monkeypatch.setenv("DCFLOW_CACHE_DIR", str(tmp_path / "decoded-2"))  # decode again, too
    again = load_image_source(name, DecodeSettings())
    assert len(fetched) == 6  # every object came from the cache
    np.testing.assert_array_equal(first.x, again.x)
    client.upload_file(str(_png(tmp_path / "edit.png", 77)), BUCKET, "cached/dogs/d1.png")
    edited = load_image_source(name, DecodeSettings())
    assert fetched[6:] == ["cached/dogs/d1.png"]
    assert not np.array_equal(edited.x[4], first.x[4])
    leftovers = [p for p in (tmp_path / "objects").rglob("*") if p.name.endswith(".tmp")]
    assert not leftovers


def test_an_object_rewritten_after_listing_is_refused(client: Any, tmp_path: Path) -> None:
    client.put_object(Bucket=BUCKET, Key="race/a.png", Body=b"first")
    [listed] = dcflow.storage.list_objects(f"s3://{BUCKET}/race/")
    client.put_object(Bucket=BUCKET, Key="race/a.png", Body=b"second")
    with pytest.raises(DataError, match="changed or vanished since it was listed"):
        dcflow.storage.download_listed(BUCKET, [(listed, tmp_path / "a.png")])
    assert not any(tmp_path.iterdir())  # no partial or temporary file left


def test_a_file_list_in_the_bucket(
    client: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _pets(tmp_path / "pets", client, "listed")
    rows = "path,label\ncats/c0.png,cat\n./dogs/d1.png,dog\ncats/gone.png,cat\ncats/c2.png,cat\n"
    client.put_object(Bucket=BUCKET, Key="listed/list.csv", Body=rows.encode())
    name = f"csv:s3://{BUCKET}/listed/list.csv"
    pinned = pin_source(name)
    data = load_dataset(DatasetConfig(name=name, sha256=pinned))
    assert list(data.files) == ["cats/c0.png", "dogs/d1.png", "cats/c2.png"]
    assert data.y is not None and data.y.tolist() == [0, 1, 0]
    assert "unreadable: skipped 1 file(s), e.g. cats/gone.png" in capsys.readouterr().err
    client.put_object(
        Bucket=BUCKET, Key="listed/list.csv", Body=rows.replace("cats/c2.png,cat\n", "").encode()
    )
    with pytest.raises(DataError, match="listing changed"):
        load_dataset(DatasetConfig(name=name, sha256=pinned))
