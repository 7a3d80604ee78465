"""NT-Xent, the normalised temperature-scaled cross-entropy of SimCLR.

Chen et al., "A Simple Framework for Contrastive Learning of Visual Representations", ICML 2020,
Eq. (1). For unit projections ``c = [a; b]`` (``2B`` rows) and anchor ``i`` with positive ``p(i)``
(the other view of the same image):
``l_i = -log( exp(c_i . c_p(i) / tau) / sum_{j != i} exp(c_i . c_j / tau) )``.
``one_way`` averages over the ``B`` view-1 anchors (the released SCAN code); ``symmetric`` over all
``2B`` anchors (the paper), which equals the mean of the one-way loss in both view orders.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F


def ntxent_loss(
    a: torch.Tensor,
    b: torch.Tensor,
    temperature: float,
    mode: Literal["one_way", "symmetric"] = "symmetric",
) -> torch.Tensor:
    """Scalar NT-Xent loss.

    Args:
        a: unit-norm projections of view 1 ``[B, d]``.
        b: unit-norm projections of view 2 ``[B, d]`` (row ``i`` pairs with ``a[i]``).
        temperature: tau > 0.
        mode: ``one_way`` (view-1 anchors only) or ``symmetric`` (all ``2B`` anchors).
    """
    n = a.shape[0]
    c = torch.cat([a, b])
    sim = (c @ c.T) / temperature
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=c.device), float("-inf"))
    idx = torch.arange(n, device=c.device)
    target = torch.cat([idx + n, idx])
    losses = F.cross_entropy(sim, target, reduction="none")
    return losses[:n].mean() if mode == "one_way" else losses.mean()
