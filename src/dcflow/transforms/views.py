"""The configurable view of SimCLR, SCAN and RUC: one :class:`ViewConfig`, one batched draw.

Paper views (SimCLR, Chen et al. ICML 2020; SCAN section 3.3; RUC section 3.2): RandomResizedCrop
(scale 0.2-1) + flip + ColorJitter(0.4, 0.4, 0.4, 0.1) p 0.8 + grey-scale p 0.2 for SimCLR; the
strong view adds RandAugment operations (:mod:`~dcflow.transforms.randaugment`) and a Cutout square.
For small grey-scale digits the presets use no flip and no hue / grey-scale jitter but pixel noise
and stroke-width jitter. :func:`random_view` composes the shared primitives in a fixed order: warp
(crop, zoom, rotation, shear, translation, flip as one matrix), stroke, colour jitter, grey-scale,
RandAugment, noise, Cutout. Its draws (and their arithmetic) define the recorded views.
"""

from __future__ import annotations

import math

import torch
from pydantic import Field

from dcflow.config import StrictModel
from dcflow.transforms.colour import jitter, random_grey
from dcflow.transforms.cutout import cutout
from dcflow.transforms.noise import add_noise
from dcflow.transforms.randaugment import randaugment
from dcflow.transforms.sample import coin, crop_box, per_image, uniform
from dcflow.transforms.stroke import stroke_jitter
from dcflow.transforms.warp import affine_matrices, is_identity, warp


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


def affine_matrices_for(cfg: ViewConfig, n: int, gen: torch.Generator) -> torch.Tensor:
    """``[n, 2, 3]`` output->input matrices in normalised coordinates (CPU).

    ``A = diag(sx, sy) R(theta) S(shear) / zoom`` for a crop box ``(sx, sy)``, flip on column 0.
    """
    aspect = (3 / 4, 4 / 3) if cfg.crop_scale < 1 else None
    sx, sy, cx, cy = crop_box(n, (cfg.crop_scale, 1.0), aspect, gen)
    zoom = uniform(n, *cfg.zoom, gen)
    theta = torch.deg2rad(uniform(n, -cfg.rotation, cfg.rotation, gen))
    shear = torch.tan(torch.deg2rad(uniform(n, -cfg.shear, cfg.shear, gen)))
    flip = torch.where(coin(n, 0.5, gen), -1.0, 1.0) if cfg.flip else None
    tx = cx + 2 * cfg.translate * uniform(n, -1.0, 1.0, gen)
    ty = cy + 2 * cfg.translate * uniform(n, -1.0, 1.0, gen)
    return affine_matrices(tx, ty, theta=theta, shear=shear, rows=(sx, sy), zoom=zoom, flip=flip)


def colour_jitter(x: torch.Tensor, cfg: ViewConfig, gen: torch.Generator) -> torch.Tensor:
    """Brightness, contrast, saturation and hue jitter applied with probability ``jitter_p``.

    Factors ``U(1 - s, 1 + s)``, hue ``U(-hue, hue)`` turns; one clamp at the end.
    """
    n, dev = x.shape[0], x.device

    def fac(s: float) -> torch.Tensor:
        return per_image(uniform(n, 1 - s, 1 + s, gen, dev))

    on = per_image(coin(n, cfg.jitter_p, gen, dev))
    brightness, contrast = fac(cfg.brightness), fac(cfg.contrast)
    rgb = x.shape[1] == 3
    saturation = fac(cfg.saturation) if rgb else None
    angle = 2 * math.pi * uniform(n, -cfg.hue, cfg.hue, gen, dev) if rgb and cfg.hue > 0 else None
    factors = (brightness, contrast, saturation)
    return jitter(x, on, factors, angle, clamp_each=False, fused_hue=True)


def random_view(x: torch.Tensor, cfg: ViewConfig, gen: torch.Generator) -> torch.Tensor:
    """A fresh random view of every image in ``x`` ``[B, C, H, W]`` (same shape, in [0, 1]).

    Random numbers come from the CPU generator ``gen``; the images stay on their device.
    """
    n, dev = x.shape[0], x.device
    mats = affine_matrices_for(cfg, n, gen).to(x)
    if not is_identity(mats):
        x = warp(x, mats)
    if cfg.stroke > 0:
        x = stroke_jitter(x, cfg.stroke, gen)
    if cfg.jitter_p > 0:
        x = colour_jitter(x, cfg, gen)
    if cfg.grayscale_p > 0 and x.shape[1] == 3:
        x = random_grey(x, per_image(coin(n, cfg.grayscale_p, gen, dev)))
    if cfg.randaug_ops:
        x = randaugment(x, cfg.randaug_ops, gen)
    if cfg.noise_std > 0 and cfg.noise_p > 0:
        x = add_noise(x, cfg.noise_std, gen, per_image(coin(n, cfg.noise_p, gen, dev)))
    if cfg.cutout:
        x = cutout(x, cfg.cutout, gen)
    return x
