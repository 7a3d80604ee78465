"""Stroke-width jitter for digit images (a dcflow augmentation, no paper).

Digit classes vary in pen width (USPS: the zeros form a thin and a thick mode that contrastive
views otherwise keep apart), so a view may blend each image toward its 3x3 dilation or erosion.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dcflow.transforms.sample import uniform


def stroke_blend(x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Thicker or thinner strokes: ``x + a (dilate(x) - x)`` for ``a >= 0``, else toward erosion.

    ``a`` ``[B]`` in ``[-1, 1]``; dilation / erosion are 3x3 max / min filters, so ``a = +-1``
    grows / shrinks every stroke by one pixel on each side.
    """
    a = a.to(x).view(-1, 1, 1, 1)
    dilated = F.max_pool2d(x, 3, 1, 1)
    eroded = -F.max_pool2d(-x, 3, 1, 1)
    return torch.where(a >= 0, x + a * (dilated - x), x + a * (x - eroded)).clamp(0, 1)


def stroke_jitter(x: torch.Tensor, amount: float, gen: torch.Generator) -> torch.Tensor:
    """:func:`stroke_blend` with ``a ~ U(-amount, amount)`` per image."""
    return stroke_blend(x, uniform(x.shape[0], -amount, amount, gen))
