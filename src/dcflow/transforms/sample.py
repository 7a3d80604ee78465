"""Random draws shared by every view: uniform numbers, coins and random-resized-crop boxes.

Every number comes from the caller's seeded generator (a CPU generator in every method:
``StageContext.generator``), drawn on the generator's device and moved to ``device``, so a view is a
pure function of its input batch and the generator state. The order of the draws is part of a
view's definition: a preset that draws in another order makes other views.
"""

from __future__ import annotations

import math

import torch


def uniform(
    n: int | tuple[int, ...],
    lo: float,
    hi: float,
    gen: torch.Generator,
    device: torch.device | None = None,
) -> torch.Tensor:
    """``U(lo, hi)`` draws of shape ``n``, computed as ``rand * (hi - lo) + lo``.

    Args:
        n: number of draws, or a shape.
        lo: lower bound.
        hi: upper bound.
        gen: seeded generator.
        device: where the draws go (``None``: stay on the generator's device).

    Returns:
        ``[n]`` (or shape ``n``) float32 draws.
    """
    u = torch.rand(n, generator=gen, device=gen.device) * (hi - lo) + lo
    return u if device is None else u.to(device)


def coin(
    n: int, p: float, gen: torch.Generator, device: torch.device | None = None
) -> torch.Tensor:
    """``[n]`` bools, each true with probability ``p`` (one uniform draw per sample)."""
    return uniform(n, 0.0, 1.0, gen, device) < p


def per_image(t: torch.Tensor) -> torch.Tensor:
    """``[B]`` -> ``[B, 1, 1, 1]``, to broadcast one value per image over a batch."""
    return t.view(-1, 1, 1, 1)


def crop_box(
    n: int,
    area: tuple[float, float],
    aspect: tuple[float, float] | None,
    gen: torch.Generator,
    device: torch.device | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random resized crop boxes (torchvision ``RandomResizedCrop``, single draw, no retry loop).

    Draws the area fraction ``U(area)``, the aspect ratio log-uniform in ``aspect`` (``None``:
    square, no draw), then the centre uniformly where the box fits. Sides are clamped to the image.

    Returns:
        ``sx``, ``sy`` (box width / height as fractions of the image) and ``cx``, ``cy`` (centre in
        normalised coordinates), each ``[n]``.
    """
    a = uniform(n, *area, gen, device)
    if aspect is None:
        sx = sy = a.sqrt().clamp(max=1.0)
    else:
        log_ratio = (math.log(aspect[0]), math.log(aspect[1]))
        ratio = torch.exp(uniform(n, *log_ratio, gen, device))
        sx, sy = (a * ratio).sqrt().clamp(max=1.0), (a / ratio).sqrt().clamp(max=1.0)
    cx = uniform(n, -1.0, 1.0, gen, device) * (1 - sx)
    cy = uniform(n, -1.0, 1.0, gen, device) * (1 - sy)
    return sx, sy, cx, cy
