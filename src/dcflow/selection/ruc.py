"""RUC's clean-set selection strategies (Park et al., CVPR 2021, section 3.1).

* Confidence: ``X_conf = {i : max p_i >= tau1}``.
* Metric: a kNN vote among the ``n_num`` most similar samples (self included) in the unit-norm
  embedding; ``X_metric = {i : vote label = pseudo-label}``. Ties go to the smallest class id.
* Hybrid: ``X_conf & X_metric`` (the paper's default).
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch

Strategy = Literal["hybrid", "confidence", "metric"]


class Selection(NamedTuple):
    """Clean mask of the chosen strategy, both strategies' masks, vote labels, tie count."""

    clean: torch.Tensor
    conf_mask: torch.Tensor
    metric_mask: torch.Tensor
    knn_label: torch.Tensor
    ties: int


def confidence_mask(confidence: torch.Tensor, tau1: float) -> torch.Tensor:
    """Boolean ``[N]``: ``confidence >= tau1``."""
    return confidence >= tau1


def knn_vote(
    embeddings: torch.Tensor, labels: torch.Tensor, n_classes: int, n_num: int, chunk: int = 1024
) -> tuple[torch.Tensor, int]:
    """Unweighted vote of the ``n_num`` nearest samples (inner product, self included).

    Args:
        embeddings: unit-norm rows ``[N, d]``.
        labels: pseudo-labels ``[N]`` in ``[0, K)``.
        n_classes: K.
        n_num: neighbours per sample, ``1 <= n_num <= N``.
        chunk: rows per similarity block (memory bound ``chunk x N``).

    Returns:
        ``(vote label [N], number of tied votes)``.
    """
    n = embeddings.shape[0]
    out, ties = torch.empty(n, dtype=torch.long, device=labels.device), 0
    for start in range(0, n, chunk):
        sim = embeddings[start : start + chunk] @ embeddings.T
        rows = torch.arange(sim.shape[0], device=sim.device)
        sim[rows, rows + start] = float("inf")  # self always votes, even among duplicates
        idx = sim.topk(n_num, dim=1).indices
        votes = torch.zeros(sim.shape[0], n_classes, device=labels.device)
        votes.scatter_add_(1, labels[idx], torch.ones_like(idx, dtype=votes.dtype))
        best = votes.max(1, keepdim=True).values
        ties += int(((votes == best).sum(1) > 1).sum())
        out[start : start + chunk] = (votes == best).float().argmax(1)  # first = smallest id
    return out, ties


def select_clean(
    confidence: torch.Tensor,
    labels: torch.Tensor,
    embeddings: torch.Tensor,
    n_classes: int,
    strategy: Strategy,
    tau1: float,
    n_num: int,
) -> Selection:
    """Clean mask by the chosen strategy, with the per-strategy masks and the vote labels."""
    conf = confidence_mask(confidence, tau1)
    knn_label, ties = knn_vote(embeddings, labels, n_classes, n_num)
    metric = knn_label == labels
    clean = {"hybrid": conf & metric, "confidence": conf, "metric": metric}[strategy]
    return Selection(clean, conf, metric, knn_label, ties)
