"""SCAN clustering loss and the class-balanced self-labelling loss.

Van Gansbeke et al., "SCAN: Learning to Classify Images without Labels", ECCV 2020.
Eq. (2): ``L = -(1/B) sum_i log <p(x_i), p(x_n(i))> - lambda * H(p_bar)`` with
``p_bar = (1/B) sum_i p(x_i)`` and ``H(p) = -sum_c p_c log p_c``.
Self-labelling (section 3.3): cross-entropy on strongly augmented views of the samples whose
weak-view confidence exceeds a threshold, weighted per class by ``|M| / |{i in M: y_i = c}|``.

Data parallelism (:mod:`dcflow.train.distributed`): the consistency term is a mean over anchors, so
each process takes its shard's mean; ``p_bar`` is the mean over the GLOBAL batch (the anchors'
probabilities are all-gathered with gradients), so the mean of the processes' losses is the
one-process loss of the global batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dcflow.train.distributed import all_reduce_sum, gather_batch, world


def entropy(p: torch.Tensor) -> torch.Tensor:
    """``H(p) = -sum_c p_c log max(p_c, 1e-8)`` of a distribution ``[K]`` (or rows ``[..., K]``)."""
    return -(p * torch.log(p.clamp_min(1e-8))).sum(-1)


def scan_loss(
    anchor_logits: torch.Tensor, neighbor_logits: torch.Tensor, entropy_weight: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """SCAN loss of one head.

    Args:
        anchor_logits: ``[B, K]`` logits of the anchors (this process's shard under data
            parallelism).
        neighbor_logits: ``[B, K]`` logits of one mined neighbour per anchor.
        entropy_weight: lambda (5 in training, 1 in SCAN's validation loss).

    Returns:
        ``(total, consistency, entropy)``, scalars; ``total = consistency - lambda * entropy``.
    """
    pa = F.softmax(anchor_logits, dim=1)
    pn = F.softmax(neighbor_logits, dim=1)
    consistency = -torch.log((pa * pn).sum(1).clamp_min(1e-7)).mean()
    ent = entropy(gather_batch(pa)[0].mean(0))
    return consistency - entropy_weight * ent, consistency, ent


def selflabel_loss(
    strong_logits: torch.Tensor, weak_probs: torch.Tensor, threshold: float
) -> tuple[torch.Tensor | None, int]:
    """Class-balanced CE on confident samples (SCAN self-labelling).

    With ``M`` the confident samples and ``n_c`` their count in class ``c``, the weight of class
    ``c`` is ``w_c = |M| / n_c`` and the loss is the weighted mean
    ``sum_{i in M} w_{y_i} CE_i / sum_{i in M} w_{y_i}`` (``F.cross_entropy`` with ``weight``).
    Under data parallelism ``M`` is the global batch's: the class counts are all-reduced, each
    process sums its own confident rows over the global denominator, times the world size, so the
    mean of the processes' losses is the one-process loss.

    Args:
        strong_logits: ``[B, K]`` logits of the strongly augmented views.
        weak_probs: ``[B, K]`` probabilities of the non-augmented views (no gradient needed).
        threshold: a sample is confident when ``max p > threshold`` (strict).

    Returns:
        ``(loss, n_confident)`` over the global batch; ``loss`` is ``None`` when no sample of the
        global batch is confident (every process then skips the batch).
    """
    conf, target = weak_probs.max(1)
    mask = conf > threshold
    t = target[mask]
    counts = all_reduce_sum(torch.bincount(t, minlength=weak_probs.shape[1]).float())
    n_conf = int(counts.sum())
    if n_conf == 0:
        return None, 0
    weight = torch.where(counts > 0, n_conf / counts.clamp_min(1.0), torch.zeros_like(counts))
    ce = F.cross_entropy(strong_logits[mask], t, reduction="none")
    denom = (weight * counts).sum()
    return (weight[t] * ce).sum() / denom * world().size, n_conf
