"""Batched random rotation + shift, as Keras' ``ImageDataGenerator`` used by ASPC-DA.

ASPC-DA (Guo et al., TKDE 2019, Sec. "data augmentation") draws per sample a rotation
``theta ~ U(-r, r)`` degrees and shifts ``U(-s, s) * W`` / ``U(-s, s) * H`` pixels, filling from the
nearest edge pixel. Here one 2x3 affine matrix per sample drives ``affine_grid`` + ``grid_sample``
with ``padding_mode='border'``; in the normalised grid a shift of ``s * W`` pixels is ``2 s``.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F

from dcflow.transforms.views import stroke_blend


class RandomAffine:
    """Random rotation and translation of a batch ``[B, C, H, W]`` on its own device.

    Args:
        rotation: maximum absolute rotation in degrees.
        shift: maximum shift as a fraction of width/height.
        interpolation: ``bilinear`` or ``nearest`` resampling.
        stroke: maximum stroke-width jitter after the warp (:func:`stroke_blend`; 0 = off, and
            then no random number is drawn for it).
    """

    def __init__(
        self,
        rotation: float = 10.0,
        shift: float = 0.1,
        interpolation: Literal["bilinear", "nearest"] = "bilinear",
        stroke: float = 0.0,
    ) -> None:
        self.rotation = rotation
        self.shift = shift
        self.interpolation = interpolation
        self.stroke = stroke

    def matrices(self, n: int, gen: torch.Generator, device: torch.device) -> torch.Tensor:
        """Draw ``[n, 2, 3]`` affine matrices (rotation then translation, normalised coords)."""
        u = torch.rand(n, 3, generator=gen, device=gen.device).to(device) * 2.0 - 1.0
        theta = u[:, 0] * math.radians(self.rotation)
        cos, sin = torch.cos(theta), torch.sin(theta)
        tx, ty = u[:, 1] * 2.0 * self.shift, u[:, 2] * 2.0 * self.shift
        row0 = torch.stack([cos, -sin, tx], dim=1)
        row1 = torch.stack([sin, cos, ty], dim=1)
        return torch.stack([row0, row1], dim=1)

    def apply(self, x: torch.Tensor, mats: torch.Tensor) -> torch.Tensor:
        """Warp ``x`` ``[B, C, H, W]`` with given matrices ``[B, 2, 3]``."""
        grid = F.affine_grid(mats.to(x.dtype), list(x.shape), align_corners=False)
        return F.grid_sample(
            x, grid, mode=self.interpolation, padding_mode="border", align_corners=False
        )

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """A fresh random augmentation of every image in ``x``."""
        out = self.apply(x, self.matrices(x.shape[0], gen, x.device))
        if self.stroke > 0:
            u = torch.rand(x.shape[0], generator=gen, device=gen.device) * 2.0 - 1.0
            out = stroke_blend(out, u * self.stroke)
        return out
