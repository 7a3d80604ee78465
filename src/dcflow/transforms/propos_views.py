"""Batched random views for ProPos / HaDis, computed on the data's device.

Two view families (``shared/methods/hadis.md`` sections 4.1 and 5):

* ``affine`` (CPU-scale suggestion for digits / USPS / MNIST): random rotation ``+-rotation``
  degrees, shift ``+-shift`` of the width, isotropic scale in ``[1 - scale, 1 + scale]``, then
  Gaussian pixel noise of std ``noise`` (clamped to ``[0, 1]``). No flips, no colour.
* ``simclr`` (the papers' CIFAR / STL views): random resized crop (area 0.08-1, aspect 3/4-4/3) and
  horizontal flip as one affine warp, colour jitter (brightness / contrast / saturation 0.4) with
  probability 0.8 and grayscale with probability 0.2. Hue jitter (0.1 upstream) is left out: it
  needs an RGB<->HSV round trip per pixel and changes little at this scale.

Every draw comes from one seeded generator; no per-sample Python loop.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F

ViewKind = Literal["affine", "simclr"]


def _uniform(
    n: int, lo: float, hi: float, gen: torch.Generator, device: torch.device
) -> torch.Tensor:
    return (torch.rand(n, generator=gen, device=gen.device) * (hi - lo) + lo).to(device)


def _warp(x: torch.Tensor, mats: torch.Tensor) -> torch.Tensor:
    grid = F.affine_grid(mats.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def affine_view(
    x: torch.Tensor,
    gen: torch.Generator,
    rotation: float = 10.0,
    shift: float = 0.125,
    scale: float = 0.1,
    noise: float = 0.0,
) -> torch.Tensor:
    """Rotate, scale, shift ``x`` ``[B, C, H, W]`` (zero fill) and add pixel noise."""
    b, dev = x.shape[0], x.device
    theta = _uniform(b, -1.0, 1.0, gen, dev) * math.radians(rotation)
    inv = 1.0 / _uniform(b, 1.0 - scale, 1.0 + scale, gen, dev)  # sampling grid shrinks to zoom in
    tx, ty = (_uniform(b, -2.0 * shift, 2.0 * shift, gen, dev) for _ in range(2))
    cos, sin = torch.cos(theta) * inv, torch.sin(theta) * inv
    mats = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    out = _warp(x, mats)
    if noise > 0:
        eps = torch.randn(out.shape, generator=gen, device=gen.device).to(dev)
        out = (out + noise * eps).clamp_(0.0, 1.0)
    return out


def _grey(x: torch.Tensor) -> torch.Tensor:
    w = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype, device=x.device)
    return (x * w[None, :, None, None]).sum(1, keepdim=True)


def _jitter(x: torch.Tensor, gen: torch.Generator, strength: float, p: float) -> torch.Tensor:
    b, dev = x.shape[0], x.device
    apply = (_uniform(b, 0.0, 1.0, gen, dev) < p).to(x.dtype)[:, None, None, None]
    f_b, f_c, f_s = (
        _uniform(b, 1.0 - strength, 1.0 + strength, gen, dev)[:, None, None, None] for _ in range(3)
    )
    y = (x * f_b).clamp(0, 1)
    mean = _grey(y).mean(dim=(1, 2, 3), keepdim=True)
    y = ((y - mean) * f_c + mean).clamp(0, 1)
    if x.shape[1] == 3:
        g = _grey(y)
        y = ((y - g) * f_s + g).clamp(0, 1)
    return apply * y + (1 - apply) * x


def simclr_view(
    x: torch.Tensor,
    gen: torch.Generator,
    crop_min: float = 0.08,
    jitter: float = 0.4,
    jitter_p: float = 0.8,
    grey_p: float = 0.2,
) -> torch.Tensor:
    """Random resized crop + h-flip + colour jitter + grayscale of ``x`` ``[B, C, H, W]``."""
    b, dev = x.shape[0], x.device
    area = _uniform(b, crop_min, 1.0, gen, dev)
    ratio = torch.exp(_uniform(b, math.log(3 / 4), math.log(4 / 3), gen, dev))
    sw = (area * ratio).sqrt().clamp(max=1.0)
    sh = (area / ratio).sqrt().clamp(max=1.0)
    tx = _uniform(b, -1.0, 1.0, gen, dev) * (1.0 - sw)
    ty = _uniform(b, -1.0, 1.0, gen, dev) * (1.0 - sh)
    flip = torch.where(_uniform(b, 0.0, 1.0, gen, dev) < 0.5, -1.0, 1.0)
    zero = torch.zeros_like(sw)
    mats = torch.stack([torch.stack([sw * flip, zero, tx], 1), torch.stack([zero, sh, ty], 1)], 1)
    out = _jitter(_warp(x, mats), gen, jitter, jitter_p)
    if x.shape[1] == 3:
        grey = (_uniform(b, 0.0, 1.0, gen, dev) < grey_p).to(x.dtype)[:, None, None, None]
        out = grey * _grey(out).expand_as(out) + (1 - grey) * out
    return out
