"""ASPC-DA clustering loss: weighted squared distance of augmented codes to fixed centres.

Per sample ``l_i = (1/d) ||f(T(x_i)) - mu_{y_i}||^2``; the batch loss is
``sum_B v_i l_i / max(1, sum_B v_i)`` (TF-1 Keras normalisation by the number of non-zero weights,
docs/specs/aspc-da.md pitfall 3; the ``max`` guards an all-zero batch).
"""

from __future__ import annotations

import torch


def per_sample_centre_loss(z: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``[B]`` mean squared distance between codes ``z`` ``[B, d]`` and targets ``[B, d]``."""
    return ((z - targets) ** 2).mean(dim=1)


def weighted_centre_loss(
    z: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """Scalar ``sum v_i l_i / max(1, sum v_i)``."""
    per = per_sample_centre_loss(z, targets)
    return (weights * per).sum() / weights.sum().clamp_min(1.0)
