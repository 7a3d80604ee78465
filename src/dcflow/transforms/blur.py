"""Blurs of ``[B, C, H, W]`` batches: per-image Gaussian blur and PIL's 3x3 smoothing filter.

The Gaussian blur is SimCLR's (Chen et al., ICML 2020, appendix A: kernel 10% of the side,
``sigma ~ U(0.1, 2.0)``), which CC applies to ImageNet-Dogs; the 3x3 filter is PIL's
``ImageFilter.SMOOTH``, which ``ImageEnhance.Sharpness`` (RandAugment's sharpness) blends against.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, kernel: int) -> torch.Tensor:
    """Blur each image of ``[B, C, H, W]`` with its own ``sigma`` (``[B]``); separable, reflect.

    Args:
        x: images.
        sigma: standard deviation per image, in pixels.
        kernel: odd kernel side, smaller than the image side (reflect padding).
    """
    b, c, h, w = x.shape
    r = torch.arange(kernel, dtype=x.dtype, device=x.device) - kernel // 2
    k = torch.exp(-(r[None] ** 2) / (2 * sigma[:, None].to(x.dtype) ** 2))
    k = (k / k.sum(1, keepdim=True)).repeat_interleave(c, 0)  # [B*C, kernel]
    flat = F.pad(x.reshape(1, b * c, h, w), [kernel // 2] * 4, mode="reflect")
    flat = F.conv2d(flat, k.view(b * c, 1, kernel, 1), groups=b * c)
    flat = F.conv2d(flat, k.view(b * c, 1, 1, kernel), groups=b * c)
    return flat.view(b, c, h, w)


def smooth(x: torch.Tensor) -> torch.Tensor:
    """PIL's ``SMOOTH`` filter (``[[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13``), replicate padding."""
    kernel = torch.tensor([[1.0, 1.0, 1.0], [1.0, 5.0, 1.0], [1.0, 1.0, 1.0]]).to(x) / 13
    c = x.shape[1]
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel.expand(c, 1, 3, 3), groups=c)
