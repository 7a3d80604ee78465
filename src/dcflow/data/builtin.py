"""Built-in datasets: sklearn digits (bundled), USPS, MNIST, Fashion-MNIST and a fake set for tests.

USPS, MNIST and Fashion-MNIST are read from ``<data_dir>/<name>.npz`` (the format of
``shared/data/README.md``) when present, else through torchvision (which downloads).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dcflow.data.npz import Raw, read_npz
from dcflow.data.registry import register_dataset
from dcflow.errors import DataError

DIGITS_TEST_EVERY = 5  # digits has no official split: every 5th image (index % 5 == 4) is test


@register_dataset("digits", "sklearn's bundled 8x8 digits, 1,797 images, 10 classes (no download)")
def load_digits(data_dir: str | None) -> Raw:
    """Sklearn ``load_digits``: values 0..16 scaled to [0, 1] (x / 16), as float32 [N, 8, 8].

    The fixed train/test split of ``--split``: every fifth image (``index % 5 == 4``, 359 images)
    is test, the other 1,438 train. Consecutive images come from the same writers, so every writer
    lands on both sides, as in USPS and MNIST, whose official splits have other writers.
    """
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    x = (bunch.images / 16.0).astype(np.float32)
    is_train = np.arange(x.shape[0]) % DIGITS_TEST_EVERY != DIGITS_TEST_EVERY - 1
    return x, bunch.target.astype(np.int64), is_train


@register_dataset("fake", "random 8x8 blobs in 3 classes (300 images), for tests and smoke runs")
def load_fake(data_dir: str | None) -> Raw:
    """Three well-separated synthetic classes: a bright quadrant per class plus noise."""
    rng = np.random.default_rng(0)
    n_per, k = 100, 3
    x = rng.uniform(0.0, 0.2, size=(n_per * k, 8, 8)).astype(np.float32)
    y = np.repeat(np.arange(k), n_per)
    for c in range(k):
        rows = slice(c * n_per, (c + 1) * n_per)
        x[rows, (c * 2) : (c * 2) + 4, (c * 2) : (c * 2) + 4] += 0.75
    order = rng.permutation(n_per * k)  # mix classes so both splits hold all of them
    return np.clip(x, 0.0, 1.0)[order], y[order].astype(np.int64), n_per * k - 60


def _npz_or_torchvision(name: str, data_dir: str | None) -> Raw:
    if data_dir:
        path = Path(data_dir).expanduser() / f"{name}.npz"
        if path.is_file():
            return read_npz(path)
        if not Path(data_dir).expanduser().is_dir():
            raise DataError(f"--data-dir {data_dir} does not exist")
    return _torchvision(name, data_dir)


def _torchvision(name: str, data_dir: str | None) -> Raw:
    import torchvision.datasets as tvd

    cls = {"usps": tvd.USPS, "mnist": tvd.MNIST, "fashion-mnist": tvd.FashionMNIST}[name]
    root = Path(data_dir or Path.home() / ".cache" / "dcflow" / "data").expanduser()
    parts = []
    try:
        for train in (True, False):
            ds = cls(str(root), train=train, download=True)
            xs = np.asarray(ds.data) if hasattr(ds, "data") else None
            parts.append((np.asarray(xs), np.asarray(ds.targets)))
    except Exception as exc:  # noqa: BLE001 - any download/parse failure is a data error
        raise DataError(
            f"{name}: no {name}.npz in --data-dir and the torchvision download failed "
            f"({type(exc).__name__})"
        ) from None
    x = np.concatenate([p[0] for p in parts]).astype(np.uint8)
    y = np.concatenate([p[1] for p in parts]).astype(np.int64)
    return x, y, int(parts[0][0].shape[0])


@register_dataset(
    "usps", "USPS 16x16 digits, 9,298 images (usps.npz in --data-dir, else torchvision)"
)
def load_usps(data_dir: str | None) -> Raw:
    """USPS, train then test."""
    return _npz_or_torchvision("usps", data_dir)


@register_dataset(
    "mnist", "MNIST 28x28 digits, 70,000 images (mnist.npz in --data-dir, else torchvision)"
)
def load_mnist(data_dir: str | None) -> Raw:
    """MNIST, train then test."""
    return _npz_or_torchvision("mnist", data_dir)


@register_dataset(
    "fashion-mnist",
    "Fashion-MNIST 28x28, 70,000 images (fashion-mnist.npz in --data-dir, else torchvision)",
)
def load_fashion(data_dir: str | None) -> Raw:
    """Fashion-MNIST, train then test."""
    return _npz_or_torchvision("fashion-mnist", data_dir)
