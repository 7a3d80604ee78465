"""The photometric half of RandAugment (Cubuk et al., NeurIPS 2020), batched.

SCAN's and RUC's strong views draw operations per image from RandAugment's pool; the geometric ones
(rotate, shear, translate) are drawn through the affine ranges of the view's warp, ``equalize`` is
left out (no vectorised histogram equalisation), and the photometric pool here is identity,
autocontrast, solarize, posterize and sharpness.
"""

from __future__ import annotations

import torch

from dcflow.transforms.blur import smooth
from dcflow.transforms.sample import per_image, uniform


def sharpness(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """PIL ``ImageEnhance.Sharpness``: ``blur + factor (x - blur)``, ``factor`` ``[B, 1, 1, 1]``."""
    blur = smooth(x)
    return (blur + factor * (x - blur)).clamp(0, 1)


def randaugment(x: torch.Tensor, n_ops: int, gen: torch.Generator) -> torch.Tensor:
    """Apply ``n_ops`` random photometric ops per image of ``[B, C, H, W]`` in ``[0, 1]``.

    Ops are drawn with replacement from identity, autocontrast, solarize (threshold U[0, 1]),
    posterize (4-8 bits) and sharpness (factor U[0.05, 0.95]).
    """
    n, dev = x.shape[0], x.device
    for _ in range(n_ops):
        op = per_image(torch.randint(0, 5, (n,), generator=gen).to(dev))
        lo, hi = x.amin((2, 3), keepdim=True), x.amax((2, 3), keepdim=True)
        auto = (x - lo) / (hi - lo).clamp_min(1e-3)
        thr = per_image(torch.rand(n, generator=gen).to(x))
        sol = torch.where(x >= thr, 1 - x, x)
        levels = per_image((2.0 ** torch.randint(4, 9, (n,), generator=gen)).to(x))
        post = torch.floor(x * (levels - 1) + 0.5) / (levels - 1)
        sharp = sharpness(x, per_image(uniform(n, 0.05, 0.95, gen).to(x)))
        x = torch.where(op == 1, auto, x)
        x = torch.where(op == 2, sol, x)
        x = torch.where(op == 3, post, x)
        x = torch.where(op == 4, sharp, x)
    return x
