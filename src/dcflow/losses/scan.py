"""SCAN clustering loss and the class-balanced self-labelling loss.

Van Gansbeke et al., "SCAN: Learning to Classify Images without Labels", ECCV 2020.
Eq. (2): ``L = -(1/B) sum_i log <p(x_i), p(x_n(i))> - lambda * H(p_bar)`` with
``p_bar = (1/B) sum_i p(x_i)`` and ``H(p) = -sum_c p_c log p_c``.
Self-labelling (section 3.3): cross-entropy on strongly augmented views of the samples whose
weak-view confidence exceeds a threshold, weighted per class by ``|M| / |{i in M: y_i = c}|``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def entropy(p: torch.Tensor) -> torch.Tensor:
    """``H(p) = -sum_c p_c log max(p_c, 1e-8)`` of a distribution ``[K]`` (or rows ``[..., K]``)."""
    return -(p * torch.log(p.clamp_min(1e-8))).sum(-1)


def scan_loss(
    anchor_logits: torch.Tensor, neighbor_logits: torch.Tensor, entropy_weight: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """SCAN loss of one head.

    Args:
        anchor_logits: ``[B, K]`` logits of the anchors.
        neighbor_logits: ``[B, K]`` logits of one mined neighbour per anchor.
        entropy_weight: lambda (5 in training, 1 in SCAN's validation loss).

    Returns:
        ``(total, consistency, entropy)``, scalars; ``total = consistency - lambda * entropy``.
    """
    pa = F.softmax(anchor_logits, dim=1)
    pn = F.softmax(neighbor_logits, dim=1)
    consistency = -torch.log((pa * pn).sum(1).clamp_min(1e-7)).mean()
    ent = entropy(pa.mean(0))
    return consistency - entropy_weight * ent, consistency, ent


def selflabel_loss(
    strong_logits: torch.Tensor, weak_probs: torch.Tensor, threshold: float
) -> tuple[torch.Tensor | None, int]:
    """Class-balanced CE on confident samples (SCAN self-labelling).

    Args:
        strong_logits: ``[B, K]`` logits of the strongly augmented views.
        weak_probs: ``[B, K]`` probabilities of the non-augmented views (no gradient needed).
        threshold: a sample is confident when ``max p > threshold`` (strict).

    Returns:
        ``(loss, n_confident)``; ``loss`` is ``None`` when no sample is confident (skip the batch).
    """
    conf, target = weak_probs.max(1)
    mask = conf > threshold
    n_conf = int(mask.sum())
    if n_conf == 0:
        return None, 0
    t = target[mask]
    counts = torch.bincount(t, minlength=weak_probs.shape[1]).float()
    weight = torch.where(counts > 0, n_conf / counts.clamp_min(1.0), torch.zeros_like(counts))
    return F.cross_entropy(strong_logits[mask], t, weight=weight), n_conf
