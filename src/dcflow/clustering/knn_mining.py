"""Nearest-neighbour mining for SCAN (Van Gansbeke et al., ECCV 2020, section 3.1).

Exact inner-product top-(k+1) on unit-norm embeddings, in row chunks with ``torch.topk`` (no faiss).
Row ``i`` lists ``i`` itself first (its similarity is forced to +inf, so duplicates cannot push it
out), then its ``k`` most similar other samples.
"""

from __future__ import annotations

import torch


def mine_neighbors(embeddings: torch.Tensor, k: int, chunk: int = 1024) -> torch.Tensor:
    """Indices ``[N, k+1]`` (int64) of each sample and its ``k`` nearest neighbours.

    Args:
        embeddings: unit-norm rows ``[N, d]``.
        k: neighbours per sample, ``k < N``.
        chunk: rows per similarity block.
    """
    n = embeddings.shape[0]
    out = []
    for start in range(0, n, chunk):
        sim = embeddings[start : start + chunk] @ embeddings.T
        rows = torch.arange(sim.shape[0], device=sim.device)
        sim[rows, rows + start] = float("inf")
        out.append(sim.topk(k + 1, dim=1).indices)
    return torch.cat(out)


def neighbor_purity(neighbors: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of mined neighbours (self excluded) that share the label of their anchor."""
    return float((labels[neighbors[:, 1:]] == labels[:, None]).float().mean())
