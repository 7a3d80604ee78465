"""NT-Xent, the normalised temperature-scaled cross-entropy of SimCLR.

Chen et al., "A Simple Framework for Contrastive Learning of Visual Representations", ICML 2020,
Eq. (1). For unit projections ``c = [a; b]`` (``2B`` rows) and anchor ``i`` with positive ``p(i)``
(the other view of the same image):
``l_i = -log( exp(c_i . c_p(i) / tau) / sum_{j != i} exp(c_i . c_j / tau) )``.
``one_way`` averages over the ``B`` view-1 anchors (the released SCAN code); ``symmetric`` over all
``2B`` anchors (the paper), which equals the mean of the one-way loss in both view orders.

Under data-parallel training the candidates ``c_j`` are the whole global batch, gathered from every
process with gradients (:func:`dcflow.train.distributed.gather_batch`); each process averages over
its own anchors, and the mean over processes is the one-process loss on the global batch. This is
the fix for upstream Contrastive Clustering's multi-GPU accuracy gap, where each GPU contrasted only
its own shard.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from dcflow.train.distributed import gather_batch


def ntxent_loss(
    a: torch.Tensor,
    b: torch.Tensor,
    temperature: float,
    mode: Literal["one_way", "symmetric"] = "symmetric",
    gather: bool = True,
) -> torch.Tensor:
    """Scalar NT-Xent loss of this process's anchors against the global batch.

    Args:
        a: unit-norm projections of view 1 ``[B, d]``.
        b: unit-norm projections of view 2 ``[B, d]`` (row ``i`` pairs with ``a[i]``).
        temperature: tau > 0.
        mode: ``one_way`` (view-1 anchors only) or ``symmetric`` (all ``2B`` anchors).
        gather: contrast against every process's rows (the global batch); ``False`` keeps the
            contrast local (used for rows that are already global, such as CC's cluster columns).
    """
    n = a.shape[0]
    (big_a, offset), (big_b, _) = (gather_batch(a), gather_batch(b)) if gather else ((a, 0), (b, 0))
    n_all = big_a.shape[0]
    keys = torch.cat([big_a, big_b])  # [2 N_all, d]
    queries = torch.cat([a, b])  # [2 n, d]
    logits = (queries @ keys.T) / temperature
    own = torch.arange(n, device=a.device) + offset
    self_col = torch.cat([own, own + n_all])  # where each query sits among the keys
    pos_col = torch.cat([own + n_all, own])  # its other view
    rows = torch.arange(2 * n, device=a.device)
    logits = logits.index_put((rows, self_col), torch.tensor(float("-inf"), device=a.device))
    losses = F.cross_entropy(logits, pos_col, reduction="none")
    return losses[:n].mean() if mode == "one_way" else losses.mean()
