"""The pool's images as the stages see them: uint8 on the host, float32 batches on the device.

A :class:`ImageBank` wraps the dataset's pixels (uint8 ``[N, C, H, W]``, possibly a strided view of
channels-last or memory-mapped storage) and hands out float32 batches in ``[0, 1]`` on the run's
device; the float conversion happens per batch, except for a small pool (float32 copy up to
:data:`FLOAT_BYTES`), converted once, which measured faster. Where the pool fits (any CPU run; on
a GPU, up to :data:`RESIDENT_BYTES` of uint8) it sits on the device once and a batch is a gather
there. A larger pool stays on the host: a batch is gathered on the host, pinned and copied
asynchronously, and :meth:`ImageBank.stream` prepares the next batch on a background thread while
the device computes. Peak memory then grows with the batch, not with N.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch

RESIDENT_BYTES = 2 << 30
"""A GPU keeps the uint8 pool resident up to this size (and a quarter of its free memory)."""

FLOAT_BYTES = 512 << 20
"""A resident pool whose float32 copy fits in this many bytes is converted once (the fast path)."""

Index = torch.Tensor | np.ndarray | slice | int


def _host_tensor(x: np.ndarray) -> torch.Tensor:
    """Zero-copy torch view of ``x`` (read-only memory maps included; nothing writes to it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "non-writable NumPy array"
        return torch.from_numpy(x)


def _fits_on(device: torch.device, nbytes: int) -> bool:
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes <= min(RESIDENT_BYTES, free // 4)


class ImageBank:
    """Float32 batches in ``[0, 1]`` of a uint8 (or float) image pool, on ``device``.

    Indexing (a LongTensor, a numpy index array, a slice or an int) returns a float32 tensor on
    ``device``. ``shape``, ``len`` and ``device`` behave as on the float tensor this replaces;
    :meth:`reshape` gives the flattened ``[N, C*H*W]`` view the autoencoder methods train on.

    Args:
        x: ``[N, C, H, W]`` uint8 (divided by 255 per batch) or float32 already in ``[0, 1]``.
        device: where batches go.
        resident: keep the pool on ``device`` (default: when it fits, see the module docstring).
    """

    def __init__(self, x: np.ndarray, device: torch.device, resident: bool | None = None) -> None:
        self.device = torch.device(device)
        self._uint8 = x.dtype == np.uint8
        host = _host_tensor(x)
        nbytes = int(x.size) * x.itemsize
        self.resident = _fits_on(self.device, nbytes) if resident is None else resident
        self._store = host.to(self.device) if self.resident else host
        if self.resident and self._uint8 and 4 * nbytes <= FLOAT_BYTES:
            # small pools: convert once (the same float32 values), skip the per-batch conversion
            self._store = self._store.float().div_(255.0)
            self._uint8 = False
        self._image_shape = tuple(int(s) for s in x.shape[1:])
        self._flat = False

    @property
    def shape(self) -> torch.Size:
        """``[N, C, H, W]``, or ``[N, C*H*W]`` for the flattened view."""
        n = int(self._store.shape[0])
        return torch.Size(
            (n, int(np.prod(self._image_shape))) if self._flat else (n, *self._image_shape)
        )

    def __len__(self) -> int:
        return int(self._store.shape[0])

    def reshape(self, n: int, flat: int) -> ImageBank:
        """The ``[N, C*H*W]`` view (``reshape(N, -1)`` as on a tensor); shares the storage."""
        if n != len(self) or flat != -1:
            raise ValueError("an ImageBank reshapes to (N, -1) only")
        view = object.__new__(ImageBank)
        view.__dict__.update(self.__dict__)
        view._flat = True
        return view

    def _rows(self, idx: Index) -> torch.Tensor:
        """The raw rows of ``idx`` (a batch), still on the store's device and dtype."""
        if isinstance(idx, slice):
            return self._store[idx]
        if isinstance(idx, int):
            return self._store[idx : idx + 1]
        index = torch.as_tensor(idx).to(self._store.device)
        if index.dtype == torch.bool:
            index = index.nonzero().squeeze(1)
        rows = self._store.index_select(0, index.reshape(-1).long())
        return rows.reshape(*index.shape, *rows.shape[1:])

    def _to_batch(self, rows: torch.Tensor) -> torch.Tensor:
        if rows.device != self.device:
            rows = rows.contiguous()
            if self.device.type == "cuda":
                rows = rows.pin_memory()
            rows = rows.to(self.device, non_blocking=True)
        out = rows.float()
        if self._uint8:
            out = out.div_(255.0)
        lead = out.dim() - len(self._image_shape)
        return out.flatten(lead) if self._flat else out

    def __getitem__(self, idx: Index) -> torch.Tensor:
        out = self._to_batch(self._rows(idx))
        return out[0] if isinstance(idx, int) else out

    def split(self, size: int) -> Iterator[torch.Tensor]:
        """Consecutive float batches of ``size`` rows (``torch.Tensor.split`` of the pool)."""
        for start in range(0, len(self), size):
            yield self[slice(start, start + size)]

    def stream(
        self, batches: Iterable[torch.Tensor]
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """``(idx, images)`` per index batch; off the device the next batch is prepared meanwhile.

        A resident pool gathers on the device in order (nothing to overlap); a host pool gathers,
        pins and copies batch ``i + 1`` on a worker thread while batch ``i`` computes.
        """
        if self.resident:
            for idx in batches:
                yield idx, self[idx]
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dcflow-prefetch") as pool:
            pending: tuple[torch.Tensor, Future[torch.Tensor]] | None = None
            for idx in batches:
                job = pool.submit(self.__getitem__, idx)
                if pending is not None:
                    yield pending[0], pending[1].result()
                pending = (idx, job)
            if pending is not None:
                yield pending[0], pending[1].result()

    def channel_stats(self, chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel mean and unbiased std ``[C]`` of the pool, in chunks (float64 sums)."""
        c = self._image_shape[0]
        total = torch.zeros(c, dtype=torch.float64, device=self.device)
        squares = torch.zeros(c, dtype=torch.float64, device=self.device)
        for xb in self.split(chunk):
            xb = xb.reshape(xb.shape[0], c, -1).double()
            total += xb.sum((0, 2))
            squares += xb.square().sum((0, 2))
        count = len(self) * int(np.prod(self._image_shape[1:]))
        mean = total / count
        var = (squares - count * mean.square()) / max(count - 1, 1)
        return mean.float(), var.clamp_min(0).sqrt().float()


Images = torch.Tensor | ImageBank
"""What a training loop indexes: a float tensor (tests, small helpers) or the pool's bank."""


def stream(
    x: Images, batches: Iterable[torch.Tensor]
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``(idx, x[idx])`` per index batch, prefetched when ``x`` is a bank off the device."""
    if isinstance(x, ImageBank):
        return x.stream(batches)
    return ((idx, x[idx]) for idx in batches)
