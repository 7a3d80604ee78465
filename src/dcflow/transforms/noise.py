"""Additive Gaussian pixel noise, the CPU-scale stand-in for colour views on grey digits.

The specs' CPU-scale views for grey digits (docs/specs/hadis.md, uldc.md and ruc.md,
§5 augmentation rows) replace colour jitter by a small affine warp plus Gaussian pixel noise; images
are clamped back to ``[0, 1]``.
"""

from __future__ import annotations

import torch


def add_noise(
    x: torch.Tensor, std: float, gen: torch.Generator, on: torch.Tensor | None = None
) -> torch.Tensor:
    """``clamp(x + std * eps, 0, 1)``, ``eps ~ N(0, 1)`` per pixel, drawn from ``gen``.

    Args:
        x: ``[B, C, H, W]`` in ``[0, 1]``.
        std: noise standard deviation.
        gen: seeded generator (drawn on its own device).
        on: ``[B, 1, 1, 1]`` bool, the images that get noise (``None``: all).
    """
    eps = torch.randn(x.shape, generator=gen, device=gen.device).to(x)
    scale = std if on is None else on.to(x) * std
    return (x + scale * eps).clamp(0, 1)
