from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from dcflow.config import DatasetConfig
from dcflow.data import load_dataset
from dcflow.errors import ConfigError, DataError

WriteNpz = Callable[..., Path]


def _imgs(n: int = 12, rng: np.random.Generator | None = None) -> np.ndarray:
    rng = rng or np.random.default_rng(0)
    return rng.integers(0, 256, size=(n, 6, 5), dtype=np.uint8)


def _labels(n: int = 12) -> np.ndarray:
    return np.arange(n, dtype=np.int64) % 3


def _load(path: Path, **kw: object) -> object:
    return load_dataset(DatasetConfig(name=f"npz:{path}", **kw))  # type: ignore[arg-type]


def test_digits() -> None:
    ds = load_dataset(DatasetConfig(name="digits"))
    assert ds.x.shape == (1797, 1, 8, 8) and ds.x.dtype == np.float32
    assert ds.x.min() == 0.0 and ds.x.max() == 1.0
    assert ds.n_clusters == 10 and ds.n == 1797 and ds.image_shape == (1, 8, 8)
    assert ds.y is not None and ds.y.dtype == np.int64 and ds.y.shape == (1797,)
    assert np.array_equal(ds.index, np.arange(1797))


def test_fake_has_three_classes_and_a_split() -> None:
    ds = load_dataset(DatasetConfig(name="fake"))
    assert ds.x.shape == (300, 1, 8, 8) and ds.n_clusters == 3
    assert load_dataset(DatasetConfig(name="fake", split="train")).n == 240
    # the test split of `fake` is the last 60 rows: class 2 only, so K must be given
    assert load_dataset(DatasetConfig(name="fake", split="test", n_clusters=3)).n == 60


def test_npz_uint8_grayscale(write_npz: WriteNpz) -> None:
    x = _imgs()
    ds = load_dataset(DatasetConfig(name=f"npz:{write_npz(x=x, y=_labels())}"))
    assert ds.x.shape == (12, 1, 6, 5) and ds.x.dtype == np.uint8  # uint8 until the batch
    assert np.array_equal(ds.x[:, 0], x)
    assert np.array_equal(ds.float_images()[:, 0], x / np.float32(255.0))
    assert ds.n_clusters == 3 and ds.y is not None and ds.y.dtype == np.int64


def test_npz_uint8_rgb_goes_channels_first(write_npz: WriteNpz) -> None:
    x = np.random.default_rng(1).integers(0, 256, size=(4, 6, 5, 3), dtype=np.uint8)
    ds = load_dataset(DatasetConfig(name=f"npz:{write_npz(x=x)}", n_clusters=2))
    assert ds.x.shape == (4, 3, 6, 5) and ds.x.dtype == np.uint8
    assert np.array_equal(ds.x[2, 1], x[2, :, :, 1])
    assert ds.y is None and ds.n_clusters == 2


def test_npz_float_in_unit_range_accepted(write_npz: WriteNpz) -> None:
    x = np.random.default_rng(2).random((10, 4, 4)).astype(np.float64)
    x[0, 0, 0], x[0, 0, 1] = 0.0, 1.0
    ds = load_dataset(DatasetConfig(name=f"npz:{write_npz(x=x, y=_labels(10))}"))
    assert ds.x.dtype == np.float32
    assert np.allclose(ds.x[:, 0], x)


def test_split_train_and_test(write_npz: WriteNpz) -> None:
    path = write_npz(x=_imgs(), y=_labels(), n_train=np.int64(9))
    train = load_dataset(DatasetConfig(name=f"npz:{path}", split="train"))
    test = load_dataset(DatasetConfig(name=f"npz:{path}", split="test"))
    assert train.n == 9 and test.n == 3
    assert np.array_equal(train.index, np.arange(9))
    assert np.array_equal(test.index, np.arange(9, 12))
    assert test.y is not None and np.array_equal(test.y, _labels()[9:])


def test_limit_is_a_deterministic_subset() -> None:
    full = load_dataset(DatasetConfig(name="digits"))
    a = load_dataset(DatasetConfig(name="digits", limit=100))
    b = load_dataset(DatasetConfig(name="digits", limit=100))
    assert a.n == 100 and np.array_equal(a.index, b.index)
    assert np.all(np.diff(a.index) > 0)
    assert np.array_equal(a.x, full.x[a.index])
    assert full.y is not None and a.y is not None and np.array_equal(a.y, full.y[a.index])
    assert a.fingerprint() == b.fingerprint() != full.fingerprint()


def test_limit_above_size_keeps_everything() -> None:
    assert load_dataset(DatasetConfig(name="fake", limit=1000)).n == 300


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        load_dataset(DatasetConfig(name=f"npz:{tmp_path / 'nope.npz'}"))


def test_not_an_npz(tmp_path: Path) -> None:
    path = tmp_path / "junk.npz"
    path.write_bytes(np.random.default_rng(0).bytes(512))
    with pytest.raises(DataError, match="not a readable npz"):
        load_dataset(DatasetConfig(name=f"npz:{path}"))


def test_npz_without_x(write_npz: WriteNpz) -> None:
    with pytest.raises(DataError, match="no 'x' array.*images"):
        load_dataset(DatasetConfig(name=f"npz:{write_npz(images=_imgs())}"))


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (np.ones((4, 5, 5), dtype=np.int32), "must be uint8"),
        (np.ones((4, 5, 5), dtype=bool), "must be uint8"),
        (np.ones((4, 25), dtype=np.uint8), "must be"),
        (np.ones((2, 4, 5, 5, 1), dtype=np.uint8), "must be"),
        (np.ones((4, 5, 5, 2), dtype=np.uint8), "2 channels"),
        (np.ones((0, 5, 5), dtype=np.uint8), "no samples"),
        (np.full((4, 5, 5), np.nan, dtype=np.float32), "NaN"),
        (np.full((4, 5, 5), np.inf, dtype=np.float32), "infinite"),
        (np.full((4, 5, 5), 1.5, dtype=np.float32), r"\[0, 1\]"),
        (np.full((4, 5, 5), -0.1, dtype=np.float64), r"\[0, 1\]"),
    ],
    ids=["int32", "bool", "ndim2", "ndim5", "2ch", "empty", "nan", "inf", "above1", "below0"],
)
def test_bad_pixels(write_npz: WriteNpz, x: np.ndarray, match: str) -> None:
    with pytest.raises(DataError, match=match):
        load_dataset(DatasetConfig(name=f"npz:{write_npz(x=x)}", n_clusters=2))


def test_pickled_object_array_rejected(write_npz: WriteNpz) -> None:
    x = np.empty(4, dtype=object)
    x[:] = [np.zeros((5, 5)) for _ in range(4)]
    with pytest.raises(DataError, match="not a readable npz"):
        load_dataset(DatasetConfig(name=f"npz:{write_npz(x=x)}", n_clusters=2))


@pytest.mark.parametrize(
    ("y", "match"),
    [
        (np.arange(11) % 3, "y has shape"),
        (np.zeros((12, 1), dtype=np.int64), "y has shape"),
        ((np.arange(12) % 3).astype(np.float32), "integer labels"),
        (np.arange(12) % 3 - 1, "non-negative"),
    ],
    ids=["short", "2d", "float", "negative"],
)
def test_bad_labels(write_npz: WriteNpz, y: np.ndarray, match: str) -> None:
    with pytest.raises(DataError, match=match):
        load_dataset(DatasetConfig(name=f"npz:{write_npz(x=_imgs(), y=y)}"))


def test_fewer_samples_than_clusters(write_npz: WriteNpz) -> None:
    with pytest.raises(DataError, match="3 samples is fewer than 5 clusters"):
        load_dataset(DatasetConfig(name=f"npz:{write_npz(x=_imgs(3))}", n_clusters=5))


def test_limit_below_clusters(write_npz: WriteNpz) -> None:
    path = write_npz(x=_imgs(), y=_labels())
    with pytest.raises(DataError, match="2 samples is fewer than 3 clusters"):
        load_dataset(DatasetConfig(name=f"npz:{path}", limit=2, n_clusters=3))


def test_single_class_without_n_clusters(write_npz: WriteNpz) -> None:
    path = write_npz(x=_imgs(), y=np.zeros(12, dtype=np.int64))
    with pytest.raises(DataError, match="single class"):
        load_dataset(DatasetConfig(name=f"npz:{path}"))
    assert load_dataset(DatasetConfig(name=f"npz:{path}", n_clusters=2)).n_clusters == 2


def test_no_labels_and_no_n_clusters(write_npz: WriteNpz) -> None:
    with pytest.raises(DataError, match=r"n_clusters"):
        load_dataset(DatasetConfig(name=f"npz:{write_npz(x=_imgs())}"))


def test_split_without_n_train(write_npz: WriteNpz) -> None:
    with pytest.raises(DataError, match="needs n_train"):
        load_dataset(DatasetConfig(name=f"npz:{write_npz(x=_imgs(), y=_labels())}", split="train"))


@pytest.mark.parametrize(
    ("n_train", "match"),
    [
        (np.int64(13), "outside"),
        (np.int64(-1), "outside"),
        (np.float64(5.0), "integer scalar"),
        (np.array([5, 6]), "integer scalar"),
    ],
)
def test_bad_n_train(write_npz: WriteNpz, n_train: np.ndarray, match: str) -> None:
    path = write_npz(x=_imgs(), y=_labels(), n_train=n_train)
    with pytest.raises(DataError, match=match):
        load_dataset(DatasetConfig(name=f"npz:{path}"))


def test_unknown_dataset() -> None:
    with pytest.raises(ConfigError, match="unknown dataset 'no-such'.*digits"):
        load_dataset(DatasetConfig(name="no-such"))


def test_data_dir_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(DatasetConfig(name="usps", data_dir=str(tmp_path / "nope")))


def test_usps_from_data_dir(tmp_path: Path) -> None:
    """A file in the format of ``shared/data/usps.npz`` (written here, so the test always runs)."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (120, 16, 16), dtype=np.uint8)
    y = np.tile(np.arange(10), 12)
    np.savez(tmp_path / "usps.npz", x=x, y=y, n_train=np.int64(90))
    ds = load_dataset(DatasetConfig(name="usps", data_dir=str(tmp_path)))
    assert ds.x.shape == (120, 1, 16, 16) and ds.x.dtype == np.uint8
    assert ds.n_clusters == 10
    np.testing.assert_array_equal(ds.x[:, 0], x)
    train = load_dataset(DatasetConfig(name="usps", data_dir=str(tmp_path), split="train"))
    test = load_dataset(DatasetConfig(name="usps", data_dir=str(tmp_path), split="test"))
    assert (train.n, test.n) == (90, 30)
    np.testing.assert_array_equal(test.index, np.arange(90, 120))
