"""The in-memory dataset every stage works on, and its validation.

Images stay as the source gave them, uint8 (or float32 in ``[0, 1]``), shaped ``[N, C, H, W]``: a
channels-last source is a strided view, never a copy, so a memory-mapped pool stays on disk until
a batch reads it. :class:`dcflow.data.bank.ImageBank` turns batches into float32 on the device.
``index`` maps each row back to the position in the source file, so predictions can always be
joined to the user's data.
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
        x: images ``[N, C, H, W]``, uint8 (``/255`` per batch) or float32 in ``[0, 1]``.
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

    def fingerprint(self, chunk: int = 8192) -> str:
        """sha256 of the pixels (in ``[N, C, H, W]`` order, by chunks of rows) and index.

        Identifies the data for the weights cache; chunks keep a memory-mapped pool off the heap.
        """
        digest = hashlib.sha256()
        digest.update(f"{self.x.shape}{self.x.dtype}".encode())
        for start in range(0, self.n, chunk):
            digest.update(np.ascontiguousarray(self.x[start : start + chunk]).tobytes())
        digest.update(np.ascontiguousarray(self.index).tobytes())
        return digest.hexdigest()

    def float_images(self, rows: int | slice | np.ndarray = slice(None)) -> np.ndarray:
        """float32 images in ``[0, 1]`` of ``rows`` (small reads: tiles, raw-pixel scores)."""
        x = self.x[rows]
        return x.astype(np.float32) / np.float32(255.0) if x.dtype == np.uint8 else x


VALIDATE_ROWS = 8192


def to_images(x: np.ndarray, source: str) -> np.ndarray:
    """Validate raw images and return them as ``[N, C, H, W]`` without converting the pixels.

    Accepts uint8 ``[N, H, W]`` / ``[N, H, W, C]`` (kept uint8; a channels-last array becomes a
    strided view, not a copy) or floats already in ``[0, 1]`` (kept as float32).

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
        out = x
    elif np.issubdtype(x.dtype, np.floating):
        for start in range(0, x.shape[0], VALIDATE_ROWS):  # chunks: no N-sized temporaries
            block = x[start : start + VALIDATE_ROWS]
            if not np.isfinite(block).all():
                raise DataError(f"{source}: x contains NaN or infinite values")
            if block.min() < 0.0 or block.max() > 1.0:
                raise DataError(f"{source}: float pixels must lie in [0, 1]")
        out = x.astype(np.float32, copy=False)  # a float32 memory map stays mapped
    else:
        raise DataError(f"{source}: x must be uint8 (or float in [0, 1]), got {x.dtype}")
    return out[:, None, :, :] if out.ndim == 3 else out.transpose(0, 3, 1, 2)


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


def resolve_clusters(
    y: np.ndarray | None, n: int | None, requested: int | None, source: str
) -> int:
    """Number of clusters: the requested one, else the number of distinct labels.

    ``n`` is the number of samples to cluster (at least K); ``None`` skips that check.
    """
    if requested is None:
        if y is None:
            raise DataError(f"{source}: no labels to infer K from; set dataset.n_clusters")
        requested = int(np.unique(y).size)
        if requested < 2:
            raise DataError(f"{source}: labels hold a single class; clustering needs at least 2")
    if n is not None and n < requested:
        raise DataError(f"{source}: {n} samples is fewer than {requested} clusters")
    return requested
