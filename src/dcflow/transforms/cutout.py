"""Cutout (DeVries and Taylor, "Improved Regularization of CNNs with Cutout", 2017).

SCAN and RUC end their strong view with one zeroed square per image (16 px on CIFAR, 32 on STL).
"""

from __future__ import annotations

import torch


def cutout(x: torch.Tensor, max_side: int, gen: torch.Generator) -> torch.Tensor:
    """Zero one square per image of ``[B, C, H, W]``: side ``U{1..max_side}``, uniform centre."""
    n, _, h, w = x.shape
    side = torch.randint(1, max_side + 1, (n,), generator=gen).to(x.device).view(n, 1, 1)
    cy = torch.randint(0, h, (n,), generator=gen).to(x.device).view(n, 1, 1)
    cx = torch.randint(0, w, (n,), generator=gen).to(x.device).view(n, 1, 1)
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    y0, x0 = cy - side // 2, cx - side // 2
    box = (rows >= y0) & (rows < y0 + side) & (cols >= x0) & (cols < x0 + side)
    return x.masked_fill(box.unsqueeze(1), 0.0)
