"""Batched random views for SimCLR, SCAN and RUC on device tensors ``[B, C, H, W]`` in [0, 1].

One :class:`ViewConfig` describes a view; :func:`random_view` draws a fresh view of every image in
a batch with no per-sample Python: all geometric parts (random resized crop, zoom, rotation,
shear, translation, horizontal flip) form one 2x3 matrix per sample for ``affine_grid``; colour
jitter (brightness, contrast, saturation, hue), random grey-scale, Gaussian noise, RandAugment-style
photometric operations and Cutout are per-sample tensor ops selected with masks.

Paper views (SimCLR, Chen et al. ICML 2020; SCAN section 3.3; RUC section 3.2): RandomResizedCrop
(scale 0.2-1) + flip + ColorJitter(0.4, 0.4, 0.4, 0.1) p 0.8 + grey-scale p 0.2 for SimCLR; the
strong view adds RandAugment operations and a Cutout square. Geometric RandAugment operations are
drawn through the affine ranges; ``equalize`` is not implemented (no vectorised histogram
equalisation), the photometric pool is autocontrast, solarize, posterize and sharpness. For small
grey-scale digits the spec's CPU-scale views use no flip and no hue/grey-scale jitter.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pydantic import Field

from dcflow.config import StrictModel

_GREY = torch.tensor([0.299, 0.587, 0.114])


class ViewConfig(StrictModel):
    """Parameters of one random view (defaults: no augmentation)."""

    crop_scale: float = Field(default=1.0, gt=0.0, le=1.0, description="min crop area fraction")
    flip: bool = False
    rotation: float = Field(default=0.0, ge=0.0, le=180.0, description="max degrees")
    translate: float = Field(default=0.0, ge=0.0, lt=1.0, description="max fraction of size")
    zoom: tuple[float, float] = (1.0, 1.0)
    shear: float = Field(default=0.0, ge=0.0, le=45.0, description="max degrees")
    jitter_p: float = Field(default=0.0, ge=0.0, le=1.0)
    brightness: float = Field(default=0.0, ge=0.0, lt=1.0)
    contrast: float = Field(default=0.0, ge=0.0, lt=1.0)
    saturation: float = Field(default=0.0, ge=0.0, lt=1.0)
    hue: float = Field(default=0.0, ge=0.0, le=0.5)
    grayscale_p: float = Field(default=0.0, ge=0.0, le=1.0)
    noise_std: float = Field(default=0.0, ge=0.0)
    noise_p: float = Field(default=0.0, ge=0.0, le=1.0)
    randaug_ops: int = Field(default=0, ge=0, description="photometric ops drawn per image")
    cutout: int = Field(default=0, ge=0, description="max side of one zeroed square (pixels)")
    stroke: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="max stroke-width jitter: blend toward a 3x3 dilation or erosion (digits)",
    )


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen)


def affine_matrices(cfg: ViewConfig, n: int, gen: torch.Generator) -> torch.Tensor:
    """``[n, 2, 3]`` output->input matrices in normalised coordinates (CPU)."""
    area = _uniform(n, cfg.crop_scale, 1.0, gen)
    log_r = _uniform(n, math.log(3 / 4), math.log(4 / 3), gen) if cfg.crop_scale < 1 else 0.0
    ratio = torch.exp(torch.as_tensor(log_r)).expand(n)
    sx, sy = (area * ratio).sqrt().clamp(max=1.0), (area / ratio).sqrt().clamp(max=1.0)
    cx = (1 - sx) * _uniform(n, -1.0, 1.0, gen)
    cy = (1 - sy) * _uniform(n, -1.0, 1.0, gen)
    zoom = _uniform(n, *cfg.zoom, gen)
    theta = torch.deg2rad(_uniform(n, -cfg.rotation, cfg.rotation, gen))
    shear = torch.tan(torch.deg2rad(_uniform(n, -cfg.shear, cfg.shear, gen)))
    cos, sin = torch.cos(theta), torch.sin(theta)
    # A = diag(sx, sy) @ R(theta) @ [[1, shear], [0, 1]] / zoom
    a00, a01 = cos, cos * shear - sin
    a10, a11 = sin, sin * shear + cos
    flip = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0) if cfg.flip else 1.0
    tx = cx + 2 * cfg.translate * _uniform(n, -1.0, 1.0, gen)
    ty = cy + 2 * cfg.translate * _uniform(n, -1.0, 1.0, gen)
    row0 = torch.stack([sx * a00 / zoom * flip, sx * a01 / zoom, tx], 1)
    row1 = torch.stack([sy * a10 / zoom * flip, sy * a11 / zoom, ty], 1)
    return torch.stack([row0, row1], 1)


def _grey(x: torch.Tensor) -> torch.Tensor:
    """Luma ``[B, 1, H, W]``."""
    if x.shape[1] == 1:
        return x
    return (x * _GREY.to(x).view(1, 3, 1, 1)).sum(1, keepdim=True)


def _hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate hue by ``shift`` turns ``[B]`` (rotation of the chroma plane in YIQ space)."""
    to_yiq = torch.tensor(
        [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]]
    ).to(x)
    ang = 2 * math.pi * shift.to(x)
    cos, sin = torch.cos(ang), torch.sin(ang)
    rot = torch.zeros(x.shape[0], 3, 3, device=x.device, dtype=x.dtype)
    rot[:, 0, 0], rot[:, 1, 1], rot[:, 2, 2] = 1.0, cos, cos
    rot[:, 1, 2], rot[:, 2, 1] = -sin, sin
    mat = torch.linalg.inv(to_yiq) @ rot @ to_yiq  # [B, 3, 3]
    return torch.einsum("bij,bjhw->bihw", mat, x)


def colour_jitter(x: torch.Tensor, cfg: ViewConfig, gen: torch.Generator) -> torch.Tensor:
    """Brightness, contrast, saturation and hue jitter applied with probability ``jitter_p``."""
    n, dev = x.shape[0], x.device

    def fac(s: float) -> torch.Tensor:
        return _uniform(n, 1 - s, 1 + s, gen).to(dev).view(n, 1, 1, 1)

    on = (torch.rand(n, generator=gen) < cfg.jitter_p).to(dev).view(n, 1, 1, 1)
    y = x * fac(cfg.brightness)
    mean = _grey(y).mean((1, 2, 3), keepdim=True)
    y = (y - mean) * fac(cfg.contrast) + mean
    if x.shape[1] == 3:
        g = _grey(y)
        y = (y - g) * fac(cfg.saturation) + g
        if cfg.hue > 0:
            y = _hue(y, _uniform(n, -cfg.hue, cfg.hue, gen))
    return torch.where(on, y.clamp(0, 1), x)


def _sharpness(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    kernel = torch.tensor([[1.0, 1.0, 1.0], [1.0, 5.0, 1.0], [1.0, 1.0, 1.0]]).to(x) / 13
    c = x.shape[1]
    blur = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel.expand(c, 1, 3, 3), groups=c)
    return (blur + factor * (x - blur)).clamp(0, 1)


def randaugment(x: torch.Tensor, n_ops: int, gen: torch.Generator) -> torch.Tensor:
    """Apply ``n_ops`` random photometric ops per image (RandAugment's colour part).

    Ops are drawn with replacement from identity, autocontrast, solarize (threshold U[0, 1]),
    posterize (4-8 bits) and sharpness (factor U[0.05, 0.95]).
    """
    n, dev = x.shape[0], x.device
    for _ in range(n_ops):
        op = torch.randint(0, 5, (n,), generator=gen).to(dev).view(n, 1, 1, 1)
        lo, hi = x.amin((2, 3), keepdim=True), x.amax((2, 3), keepdim=True)
        auto = (x - lo) / (hi - lo).clamp_min(1e-3)
        thr = torch.rand(n, generator=gen).to(x).view(n, 1, 1, 1)
        sol = torch.where(x >= thr, 1 - x, x)
        levels = (2.0 ** torch.randint(4, 9, (n,), generator=gen)).to(x).view(n, 1, 1, 1)
        post = torch.floor(x * (levels - 1) + 0.5) / (levels - 1)
        sharp = _sharpness(x, _uniform(n, 0.05, 0.95, gen).to(x).view(n, 1, 1, 1))
        x = torch.where(op == 1, auto, x)
        x = torch.where(op == 2, sol, x)
        x = torch.where(op == 3, post, x)
        x = torch.where(op == 4, sharp, x)
    return x


def cutout(x: torch.Tensor, max_side: int, gen: torch.Generator) -> torch.Tensor:
    """Zero one square per image, side U{1..max_side}, centre uniform over the image."""
    n, _, h, w = x.shape
    side = torch.randint(1, max_side + 1, (n,), generator=gen).to(x.device).view(n, 1, 1)
    cy = torch.randint(0, h, (n,), generator=gen).to(x.device).view(n, 1, 1)
    cx = torch.randint(0, w, (n,), generator=gen).to(x.device).view(n, 1, 1)
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    y0, x0 = cy - side // 2, cx - side // 2
    box = (rows >= y0) & (rows < y0 + side) & (cols >= x0) & (cols < x0 + side)
    return x.masked_fill(box.unsqueeze(1), 0.0)


def stroke_blend(x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Thicker or thinner strokes: ``x + a (dilate(x) - x)`` for ``a >= 0``, else toward erosion.

    ``a`` ``[B]`` in ``[-1, 1]``; dilation / erosion are 3x3 max / min filters, so ``a = +-1``
    grows / shrinks every stroke by one pixel on each side. A dcflow augmentation for digit
    images, whose classes vary in pen width (USPS: the zeros form a thin and a thick mode).
    """
    a = a.to(x).view(-1, 1, 1, 1)
    dilated = F.max_pool2d(x, 3, 1, 1)
    eroded = -F.max_pool2d(-x, 3, 1, 1)
    return torch.where(a >= 0, x + a * (dilated - x), x + a * (x - eroded)).clamp(0, 1)


def stroke_jitter(x: torch.Tensor, amount: float, gen: torch.Generator) -> torch.Tensor:
    """:func:`stroke_blend` with ``a ~ U(-amount, amount)`` per image (CPU generator)."""
    return stroke_blend(x, _uniform(x.shape[0], -amount, amount, gen))


def random_view(x: torch.Tensor, cfg: ViewConfig, gen: torch.Generator) -> torch.Tensor:
    """A fresh random view of every image in ``x`` ``[B, C, H, W]`` (same shape, in [0, 1]).

    Random numbers come from the CPU generator ``gen``; the images stay on their device.
    """
    n = x.shape[0]
    mats = affine_matrices(cfg, n, gen).to(x)
    if not torch.equal(mats, _identity(n).to(x)):
        grid = F.affine_grid(mats, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if cfg.stroke > 0:
        x = stroke_jitter(x, cfg.stroke, gen)
    if cfg.jitter_p > 0:
        x = colour_jitter(x, cfg, gen)
    if cfg.grayscale_p > 0 and x.shape[1] == 3:
        on = (torch.rand(n, generator=gen) < cfg.grayscale_p).to(x.device).view(n, 1, 1, 1)
        x = torch.where(on, _grey(x).expand_as(x), x)
    if cfg.randaug_ops:
        x = randaugment(x, cfg.randaug_ops, gen)
    if cfg.noise_std > 0 and cfg.noise_p > 0:
        on = (torch.rand(n, generator=gen) < cfg.noise_p).to(x).view(n, 1, 1, 1)
        x = (x + on * cfg.noise_std * torch.randn(x.shape, generator=gen).to(x)).clamp(0, 1)
    if cfg.cutout:
        x = cutout(x, cfg.cutout, gen)
    return x


def _identity(n: int) -> torch.Tensor:
    return torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]).expand(n, 2, 3)
