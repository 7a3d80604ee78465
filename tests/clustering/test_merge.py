"""Over-cluster + kNN-graph merge read-out (dcflow.clustering.merge)."""

import numpy as np
import pytest
import torch

from dcflow.clustering import KMeans
from dcflow.clustering.merge import (
    MergeConfig,
    average_linkage_merge,
    link_counts,
    merge_labels,
    nearest_neighbors,
    overcluster_merge,
)
from dcflow.clustering.metrics import cluster_acc


def test_link_counts_by_hand() -> None:
    # 4 samples, fine clusters [0, 0, 1, 2]; each sample's single neighbour
    fine = torch.tensor([0, 0, 1, 2])
    nbrs = torch.tensor([[1], [2], [3], [2]])
    counts = link_counts(fine, nbrs, 3)
    # edges: 0->0 (diag, dropped), 0->1, 1->2, 2->1 ; symmetrised
    expected = torch.tensor(
        [[0.0, 1.0, 0.0], [1.0, 0.0, 2.0], [0.0, 2.0, 0.0]], dtype=torch.float64
    )
    assert torch.equal(counts, expected)


def test_average_linkage_merges_the_densest_pair_first() -> None:
    # raw counts favour (0, 1) but per member pair (2, 3) is denser: 4 / (1 * 2) > 10 / (10 * 10)
    counts = torch.zeros(4, 4, dtype=torch.float64)
    counts[0, 1] = counts[1, 0] = 10.0
    counts[2, 3] = counts[3, 2] = 4.0
    sizes = torch.tensor([10, 10, 1, 2])
    assert average_linkage_merge(counts, sizes, 3).tolist() == [0, 1, 2, 2]
    # merging on to two groups: the merged (2, 3) has no link to either, (0, 1) has 0.1
    assert average_linkage_merge(counts, sizes, 2).tolist() == [0, 0, 1, 1]
    assert average_linkage_merge(counts, sizes, 4).tolist() == [0, 1, 2, 3]


def _bar_and_blob(seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    """Class 0: a long dense bar on [0, 10]; class 1: a small blob at x = 12.5."""
    g = torch.Generator().manual_seed(seed)
    bar = torch.stack([torch.rand(900, generator=g) * 10, torch.randn(900, generator=g) * 0.1], 1)
    blob = torch.randn(100, 2, generator=g) * 0.3 + torch.tensor([12.5, 0.0])
    return torch.cat([bar, blob]), np.r_[np.zeros(900, int), np.ones(100, int)]


def test_merge_recovers_an_elongated_class_that_kmeans_splits() -> None:
    x, y = _bar_and_blob()
    plain = KMeans(2, 5, seed=0).fit(x).labels_.numpy()
    assert cluster_acc(y, plain) < 0.9  # k-means cuts the bar in two and joins its end to the blob
    res = overcluster_merge(x, 2, MergeConfig(over=5, neighbors=8))
    assert cluster_acc(y, res.labels.numpy()) == 1.0


def test_result_is_consistent_and_deterministic() -> None:
    x, _ = _bar_and_blob(1)
    a = overcluster_merge(x, 3, MergeConfig(over=2, neighbors=5), seed=3)
    b = overcluster_merge(x, 3, MergeConfig(over=2, neighbors=5), seed=3)
    assert torch.equal(a.labels, b.labels) and torch.equal(a.proba, b.proba)
    assert a.proba.shape == (1000, 3)
    torch.testing.assert_close(a.proba.sum(1), torch.ones(1000), rtol=0, atol=1e-5)
    assert torch.equal(a.labels, a.proba.argmax(1))
    assert a.fine_labels.max() < 6 and sorted(a.groups.unique().tolist()) == [0, 1, 2]


def test_nearest_neighbors_match_brute_force() -> None:
    x = torch.randn(50, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    d = torch.cdist(x, x)
    d.fill_diagonal_(float("inf"))
    expected = d.topk(3, largest=False).indices
    assert torch.equal(nearest_neighbors(x, 3, chunk=7), expected)


def test_fine_clusters_and_neighbours_are_capped_by_n() -> None:
    x = torch.randn(7, 3, generator=torch.Generator().manual_seed(0))
    res = overcluster_merge(x, 3, MergeConfig(over=4, neighbors=50))
    assert res.fine_labels.max() < 7 and res.labels.max() < 3


def test_bad_settings_are_rejected() -> None:
    with pytest.raises(ValueError):
        MergeConfig(over=0.5)
    with pytest.raises(ValueError):
        MergeConfig(neighbors=0)


def test_merge_labels_ignores_empty_fine_ids() -> None:
    x, y = _bar_and_blob()
    fine = KMeans(6, 3, seed=0).fit(x).labels_ * 2  # odd ids never used
    labels = merge_labels(x, fine, 2, neighbors=8)
    assert labels.max() == 1 and cluster_acc(y, labels.numpy()) == 1.0
