"""Colour operations on ``[B, C, H, W]`` batches in ``[0, 1]``: grey, hue, jitter, random grey.

torchvision's ``ColorJitter`` / ``RandomGrayscale`` as used by SimCLR (Chen et al., ICML 2020,
appendix A: jitter ``(0.8 s, 0.8 s, 0.8 s, 0.2 s)`` with probability 0.8, grey with probability
0.2), batched with one random factor per image: brightness scales, contrast blends with the mean
luma, saturation blends with the luma image, hue rotates the chroma plane of YIQ (a linear stand-in
for torchvision's HSV round trip). The parts apply in a fixed order (torchvision shuffles it).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601
_YIQ = ((0.299, 0.587, 0.114), (0.596, -0.274, -0.322), (0.211, -0.523, 0.312))

Factors = tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]


def luma(x: torch.Tensor) -> torch.Tensor:
    """``sum_c w_c x_c`` ``[B, 1, H, W]``; one channel is weighted by all three (sum ~ 1)."""
    w = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def grey(x: torch.Tensor) -> torch.Tensor:
    """Luma ``[B, 1, H, W]`` of RGB; a one-channel batch is its own grey image."""
    return x if x.shape[1] == 1 else luma(x)


def random_grey(x: torch.Tensor, on: torch.Tensor) -> torch.Tensor:
    """Replace the images where ``on`` (``[B, 1, 1, 1]`` bool) by their grey image."""
    return torch.where(on, grey(x).expand_as(x), x)


def rotate_hue(x: torch.Tensor, angle: torch.Tensor, fused: bool = False) -> torch.Tensor:
    """Rotate the hue of RGB ``x`` ``[B, 3, H, W]`` by ``angle`` ``[B]`` radians (YIQ chroma).

    Args:
        x: images.
        angle: rotation per image.
        fused: apply the per-image matrix ``T^-1 R T`` in one product instead of converting to
            YIQ, rotating and converting back. Both are the same map, rounded differently; the
            SimCLR-family views use the fused form, CC's the other, and both are kept so that
            recorded runs reproduce bit for bit.
    """
    to_yiq = torch.tensor(_YIQ, dtype=x.dtype, device=x.device)
    cos, sin = torch.cos(angle.to(x)), torch.sin(angle.to(x))
    if fused:
        rot = torch.zeros(x.shape[0], 3, 3, device=x.device, dtype=x.dtype)
        rot[:, 0, 0], rot[:, 1, 1], rot[:, 2, 2] = 1.0, cos, cos
        rot[:, 1, 2], rot[:, 2, 1] = -sin, sin
        mat = torch.linalg.inv(to_yiq) @ rot @ to_yiq  # [B, 3, 3]
        return torch.einsum("bij,bjhw->bihw", mat, x)
    yiq = torch.einsum("ij,bjhw->bihw", to_yiq, x)
    cos, sin = cos.view(-1, 1, 1), sin.view(-1, 1, 1)
    i, q = yiq[:, 1], yiq[:, 2]
    yiq = torch.stack([yiq[:, 0], cos * i - sin * q, sin * i + cos * q], dim=1)
    return torch.einsum("ij,bjhw->bihw", torch.linalg.inv(to_yiq), yiq)


def jitter(
    x: torch.Tensor,
    on: torch.Tensor,
    factors: Factors,
    angle: torch.Tensor | None = None,
    *,
    clamp_each: bool,
    fused_hue: bool = False,
    mean_of: Callable[[torch.Tensor], torch.Tensor] = grey,
) -> torch.Tensor:
    """Brightness, contrast, saturation and hue jitter of the images where ``on``.

    Args:
        x: ``[B, C, H, W]`` in ``[0, 1]``.
        on: ``[B, 1, 1, 1]`` bool, which images are jittered.
        factors: brightness, contrast and saturation factors, each ``[B, 1, 1, 1]``; saturation
            and hue act on RGB only (``None``: skipped).
        angle: hue rotation ``[B]`` in radians (``None``: no hue jitter).
        clamp_each: clamp to ``[0, 1]`` after every part, as torchvision; else once at the end.
        fused_hue: see :func:`rotate_hue`.
        mean_of: the grey image whose mean the contrast blends toward (ProPos's views use
            :func:`luma` also on one channel).
    """

    def clamp(t: torch.Tensor) -> torch.Tensor:
        return t.clamp(0, 1) if clamp_each else t

    brightness, contrast, saturation = factors
    y = clamp(x * brightness)
    mean = mean_of(y).mean((1, 2, 3), keepdim=True)
    y = clamp((y - mean) * contrast + mean)
    if x.shape[1] == 3 and saturation is not None:
        g = grey(y)
        y = clamp((y - g) * saturation + g)
    if x.shape[1] == 3 and angle is not None:
        y = clamp(rotate_hue(y, angle, fused_hue))
    return torch.where(on, y.clamp(0, 1), x)
