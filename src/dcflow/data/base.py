"""The in-memory dataset every stage works on, and its validation.

Images are kept as float32 ``[N, C, H, W]`` in ``[0, 1]``; ``index`` maps each row back to the
position in the source file, so predictions can always be joined to the user's data.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from dcflow.errors import DataError


@dataclass(frozen=True)
class Dataset:
    """A pool of images to cluster.

    Attributes:
        name: dataset name as given by the user.
        x: float32 images ``[N, C, H, W]`` in ``[0, 1]``.
        y: int64 labels ``[N]`` or ``None``; only ``evaluate`` may read them.
        index: int64 ``[N]`` positions in the source data.
        n_clusters: number of clusters K.
        files: ``[N]`` source file of each row (``folder:``/``csv:`` data), else None.
    """

    name: str
    x: np.ndarray
    y: np.ndarray | None
    index: np.ndarray
    n_clusters: int
    files: np.ndarray | None = None

    @property
    def n(self) -> int:
        """Number of samples N."""
        return int(self.x.shape[0])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        c, h, w = self.x.shape[1:]
        return int(c), int(h), int(w)

    def fingerprint(self) -> str:
        """sha256 of the pixels and index: identifies the data for the weights cache."""
        digest = hashlib.sha256()
        digest.update(str(self.x.shape).encode())
        digest.update(np.ascontiguousarray(self.x).tobytes())
        digest.update(np.ascontiguousarray(self.index).tobytes())
        return digest.hexdigest()


def to_float_images(x: np.ndarray, source: str) -> np.ndarray:
    """Validate raw images and convert them to float32 ``[N, C, H, W]`` in ``[0, 1]``.

    Accepts uint8 ``[N, H, W]`` / ``[N, H, W, C]`` (divided by 255) or floats already in ``[0, 1]``.

    Raises:
        DataError: wrong dtype or shape, empty data, NaN/inf, or float values outside ``[0, 1]``.
    """
    if x.ndim not in (3, 4):
        raise DataError(f"{source}: x must be [N,H,W] or [N,H,W,C], got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise DataError(f"{source}: x holds no samples")
    if x.ndim == 4 and x.shape[3] not in (1, 3):
        raise DataError(f"{source}: x has {x.shape[3]} channels; expected 1 or 3 (channels last)")
    if x.dtype == np.uint8:
        out = x.astype(np.float32) / 255.0
    elif np.issubdtype(x.dtype, np.floating):
        if not np.isfinite(x).all():
            raise DataError(f"{source}: x contains NaN or infinite values")
        if x.min() < 0.0 or x.max() > 1.0:
            raise DataError(f"{source}: float pixels must lie in [0, 1]")
        out = x.astype(np.float32)
    else:
        raise DataError(f"{source}: x must be uint8 (or float in [0, 1]), got {x.dtype}")
    if out.ndim == 3:
        out = out[:, None, :, :]
    else:
        out = np.ascontiguousarray(out.transpose(0, 3, 1, 2))
    return out


def check_labels(y: np.ndarray | None, n: int, source: str) -> np.ndarray | None:
    """Validate labels: integer, one per sample, non-negative."""
    if y is None:
        return None
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n:
        raise DataError(f"{source}: y has shape {tuple(y.shape)} but x has {n} samples")
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{source}: y must hold integer labels, got {y.dtype}")
    if y.min() < 0:
        raise DataError(f"{source}: y must hold non-negative labels")
    return y.astype(np.int64)


def resolve_clusters(y: np.ndarray | None, n: int, requested: int | None, source: str) -> int:
    """Number of clusters: the requested one, else the number of distinct labels."""
    if requested is None:
        if y is None:
            raise DataError(f"{source}: no labels to infer K from; set dataset.n_clusters")
        requested = int(np.unique(y).size)
        if requested < 2:
            raise DataError(f"{source}: labels hold a single class; clustering needs at least 2")
    if n < requested:
        raise DataError(f"{source}: {n} samples is fewer than {requested} clusters")
    return requested
