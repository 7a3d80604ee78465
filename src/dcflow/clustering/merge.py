"""Over-cluster, then merge on the kNN graph: a label-free read-out of K clusters from embeddings.

A dcflow read-out option, not part of any of the five papers. k-means with ``K`` centres assumes
compact clusters of similar spread. A refined embedding often breaks that: one class forms two
tight modes (USPS's zeros), so the lowest-inertia K-partition splits it and merges two other
classes instead. Here k-means runs with ``K' = round(over * K)`` centres, so every mode gets its
own fine cluster; the fine clusters are then merged greedily, always the pair with the highest
average linkage on the symmetric kNN graph,

    a(P, Q) = (E(P, Q) + E(Q, P)) / (|P| |Q|),   E(P, Q) = #{(i, j): i in P, j in kNN(i), j in Q},

until ``K`` groups remain (agglomerative graph clustering with average linkage, as in Zhang et
al., "Graph degree linkage", ECCV 2012, started from k-means fragments instead of singletons).
Two modes of one class share many kNN edges along their boundary; two classes that happen to
sit close in centroid space share few. Soft assignments are the posterior of an equal-weight
isotropic mixture at the fine centres (shared variance from the fit), summed within each group.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from pydantic import Field

from dcflow.clustering.kmeans import KMeans, squared_distances
from dcflow.config import StrictModel


class MergeConfig(StrictModel):
    """Settings of :func:`overcluster_merge`."""

    over: float = Field(default=3.0, ge=1.0, description="fine clusters per final cluster")
    neighbors: int = Field(default=20, ge=1, description="k of the Euclidean kNN graph")
    n_init: int = Field(default=10, ge=1, description="k-means restarts for the fine clusters")


@dataclass(frozen=True)
class MergeResult:
    """Output of :func:`overcluster_merge`.

    Attributes:
        labels: ``[N]`` int64 final clusters in ``0..K-1`` (``proba.argmax(1)``).
        proba: ``[N, K]`` soft assignments, rows sum to 1.
        fine_labels: ``[N]`` int64 k-means clusters in ``0..K'-1``.
        groups: ``[K']`` int64, the final cluster of each fine cluster.
    """

    labels: torch.Tensor
    proba: torch.Tensor
    fine_labels: torch.Tensor
    groups: torch.Tensor


def nearest_neighbors(z: torch.Tensor, k: int, chunk: int = 1024) -> torch.Tensor:
    """``[N, k]`` indices of each row's ``k`` nearest other rows (Euclidean, exact, chunked)."""
    sq = (z * z).sum(1)
    out = []
    for start in range(0, z.shape[0], chunk):
        score = 2.0 * z[start : start + chunk] @ z.T - sq[None, :]  # -||a-b||^2 + ||a||^2
        rows = torch.arange(score.shape[0], device=z.device)
        score[rows, rows + start] = float("-inf")
        out.append(score.topk(k, dim=1).indices)
    return torch.cat(out)


def link_counts(fine: torch.Tensor, neighbors: torch.Tensor, k_fine: int) -> torch.Tensor:
    """Symmetric ``[K', K']`` kNN edge counts between fine clusters, zero diagonal.

    Args:
        fine: ``[N]`` fine cluster of each sample.
        neighbors: ``[N, k]`` indices of each sample's neighbours (self excluded).
        k_fine: number of fine clusters ``K'``.
    """
    src = fine[:, None].expand_as(neighbors).reshape(-1)
    dst = fine[neighbors.reshape(-1)]
    counts = torch.bincount(src * k_fine + dst, minlength=k_fine * k_fine).view(k_fine, k_fine)
    counts = (counts + counts.T).double()
    counts.fill_diagonal_(0.0)
    return counts


def average_linkage_merge(counts: torch.Tensor, sizes: torch.Tensor, k: int) -> torch.Tensor:
    """Greedy average-linkage merge of ``K'`` groups down to ``k``.

    Args:
        counts: ``[K', K']`` symmetric edge counts (:func:`link_counts`).
        sizes: ``[K']`` members per fine cluster (all > 0).
        k: groups to keep, ``1 <= k <= K'``.

    Returns:
        ``[K']`` int64 group ids in ``0..k-1``, numbered by first fine cluster.
    """
    e, n = counts.clone().double(), sizes.clone().double()
    k_fine = e.shape[0]
    owner = torch.arange(k_fine)
    alive = torch.ones(k_fine, dtype=torch.bool)
    for _ in range(k_fine - k):
        aff = e / (n[:, None] * n[None, :])
        dead = ~(alive[:, None] & alive[None, :])
        aff.masked_fill_(dead | torch.eye(k_fine, dtype=torch.bool), -1.0)
        flat = int(aff.argmax())
        a, b = sorted(divmod(flat, k_fine))
        e[a] += e[b]
        e[:, a] += e[:, b]
        e[a, a] = 0.0
        n[a] += n[b]
        alive[b] = False
        owner[owner == b] = a
    return torch.unique(owner, return_inverse=True)[1]


def fine_count(k: int, over: float, n: int) -> int:
    """``K' = round(over * k)``, at least ``k`` and at most ``n`` (valid data has ``n >= k``)."""
    return min(n, max(k, round(over * k)))


def merge_fine(
    fine: torch.Tensor, neighbors: torch.Tensor, k: int, k_fine: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Merge the non-empty fine clusters ``fine`` ``[N]`` (ids ``< k_fine``) into ``k`` groups.

    Args:
        fine: fine cluster of each sample.
        neighbors: ``[N, m]`` neighbour indices (self excluded).
        k: groups wanted.
        k_fine: number of fine ids; ids without members are left out of the merge.

    Returns:
        ``(dense, groups)``: ``dense`` ``[N]`` the fine ids renumbered over the non-empty fine
        clusters (in id order), ``groups`` ``[K'_used]`` the group of each non-empty fine cluster.
    """
    sizes = torch.bincount(fine, minlength=k_fine)
    used = sizes > 0
    dense = (torch.cumsum(used.long(), 0) - 1)[fine]
    counts = link_counts(dense, neighbors, int(used.sum()))
    groups = average_linkage_merge(counts.cpu(), sizes[used].cpu(), k).to(fine.device)
    return dense, groups


def merged_proba(proba: torch.Tensor, groups: torch.Tensor, k: int) -> torch.Tensor:
    """``[N, k]`` probabilities: each fine cluster's mass added to its group."""
    out = torch.zeros(proba.shape[0], k, dtype=proba.dtype, device=proba.device)
    return out.index_add_(1, groups, proba)


def merge_labels(z: torch.Tensor, fine: torch.Tensor, k: int, neighbors: int = 20) -> torch.Tensor:
    """Merge the fine clusters ``fine`` ``[N]`` of ``z`` ``[N, d]`` into ``k`` on the kNN graph.

    Fine clusters without members are ignored. Returns ``[N]`` int64 labels in ``0..k-1``.
    """
    nbrs = nearest_neighbors(z, min(neighbors, z.shape[0] - 1))
    dense, groups = merge_fine(fine, nbrs, k, int(fine.max()) + 1)
    return groups[dense]


def overcluster_merge(
    z: torch.Tensor, k: int, cfg: MergeConfig | None = None, seed: int = 0
) -> MergeResult:
    """Read ``k`` clusters out of embeddings ``z`` ``[N, d]`` (module docstring).

    k-means and the kNN graph both use Euclidean distance on ``z`` as given (for unit-norm
    embeddings the graph is the cosine one). ``K'`` is capped at ``N``, ``neighbors`` at ``N - 1``.
    """
    cfg = cfg or MergeConfig()
    n = z.shape[0]
    k_fine = fine_count(k, cfg.over, n)
    km = KMeans(k_fine, cfg.n_init, seed=seed).fit(z)
    nbrs = nearest_neighbors(z, min(cfg.neighbors, n - 1))
    fine, groups = merge_fine(km.labels_, nbrs, k, k_fine)
    # a restart may leave a centre empty: only the centres that own samples take part
    centres = km.cluster_centers_[torch.unique(km.labels_)]
    d2 = squared_distances(z, centres)
    var = d2.gather(1, fine[:, None]).mean().clamp_min(1e-12) / z.shape[1]
    proba = merged_proba(torch.softmax(-d2 / (2.0 * var), dim=1), groups, k)
    return MergeResult(proba.argmax(1), proba, fine, groups)
