"""The geometric part of every view: one ``2 x 3`` matrix per image, one ``grid_sample`` per batch.

Crop, flip, zoom, rotation, shear and translation compose into the output -> input sampling matrix
``A = diag(rows) R(theta) S(shear) diag(cols) / zoom`` (column 0 times ``flip``) with translation
``t`` in normalised coordinates (``[-1, 1]``, so a shift of ``s`` of the width is ``2 s``); the
batch is then resampled by ``F.affine_grid`` + ``F.grid_sample`` (``align_corners=False``), as
Jaderberg et al., "Spatial Transformer Networks", NeurIPS 2015. No per-sample Python.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

Pair = tuple[torch.Tensor, torch.Tensor]
Mode = Literal["bilinear", "nearest"]
Padding = Literal["zeros", "border", "reflection"]


def _mul(a: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    return a if b is None else a * b


def affine_matrices(
    tx: torch.Tensor,
    ty: torch.Tensor,
    *,
    theta: torch.Tensor | None = None,
    shear: torch.Tensor | None = None,
    rows: Pair | None = None,
    cols: Pair | None = None,
    zoom: torch.Tensor | None = None,
    flip: torch.Tensor | None = None,
) -> torch.Tensor:
    """``[n, 2, 3]`` output -> input matrices from per-image parameters (each ``[n]``).

    Args:
        tx: horizontal translation (normalised coordinates).
        ty: vertical translation.
        theta: rotation in radians (``None``: no rotation).
        shear: ``tan`` of the shear angle (``None``: none).
        rows: ``(sx, sy)`` scaling the rows, i.e. after the rotation (a crop box).
        cols: ``(sx, sy)`` scaling the columns, i.e. before the rotation.
        zoom: divides the linear part (``> 1`` enlarges the content).
        flip: ``-1`` / ``1`` per image, multiplies column 0 (a horizontal flip).

    Returns:
        The matrices, on ``tx``'s device. An absent factor is skipped, not multiplied by one.
    """
    if theta is None:
        cos, sin = torch.ones_like(tx), torch.zeros_like(tx)
    else:
        cos, sin = torch.cos(theta), torch.sin(theta)
    a01, a11 = (-sin, cos) if shear is None else (cos * shear - sin, sin * shear + cos)
    c0, c1 = cols if cols is not None else (None, None)
    r0, r1 = rows if rows is not None else (None, None)

    def entry(r: torch.Tensor | None, a: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        out = _mul(a, c)
        out = out if r is None else r * out
        return out if zoom is None else out / zoom

    row0 = [_mul(entry(r0, cos, c0), flip), entry(r0, a01, c1), tx]
    row1 = [_mul(entry(r1, sin, c0), flip), entry(r1, a11, c1), ty]
    return torch.stack([torch.stack(row0, 1), torch.stack(row1, 1)], 1)


def warp(
    x: torch.Tensor,
    mats: torch.Tensor,
    size: tuple[int, int] | None = None,
    mode: Mode = "bilinear",
    padding: Padding = "zeros",
) -> torch.Tensor:
    """Resample ``x`` ``[B, C, H, W]`` with ``mats`` ``[B, 2, 3]`` -> ``[B, C, *size]``.

    Args:
        x: images.
        mats: output -> input matrices (moved to ``x``'s device and dtype).
        size: output ``(H, W)`` (``None``: the input's).
        mode: ``grid_sample`` interpolation.
        padding: what is read outside the image (``border``: Keras' ``fill_mode='nearest'``).
    """
    n, c = x.shape[:2]
    out_size = [n, c, *(size or x.shape[2:])]
    grid = F.affine_grid(mats.to(x), out_size, align_corners=False)
    return F.grid_sample(x, grid, mode=mode, padding_mode=padding, align_corners=False)


def is_identity(mats: torch.Tensor) -> bool:
    """Whether every matrix of ``mats`` ``[B, 2, 3]`` is exactly the identity."""
    eye = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=mats.dtype, device=mats.device)
    return torch.equal(mats, eye.expand_as(mats))


def resize(x: torch.Tensor, size: int | None) -> torch.Tensor:
    """Test-time view: bilinear resize of ``[B, C, H, W]`` to ``size`` (no-op when ``None``)."""
    if size is None or (x.shape[2] == size and x.shape[3] == size):
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
