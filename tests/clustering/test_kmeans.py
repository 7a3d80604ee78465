from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans as SkKMeans
from sklearn.datasets import make_blobs

from dcflow.clustering import KMeans, squared_distances
from dcflow.clustering.kmeans import kmeans_plusplus
from dcflow.clustering.metrics import cluster_acc


def _blobs(std: float, seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    x, y = make_blobs(n_samples=300, centers=4, n_features=5, cluster_std=std, random_state=seed)
    return torch.from_numpy(x).float(), y


def test_recovers_well_separated_blobs() -> None:
    x, y = _blobs(std=0.5)
    km = KMeans(4, n_init=3, seed=0).fit(x)
    assert cluster_acc(y, km.labels_.numpy()) == 1.0
    assert km.cluster_centers_.shape == (4, 5)
    assert km.labels_.dtype == torch.int64


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_inertia_close_to_sklearn(seed: int) -> None:
    x, _ = _blobs(std=3.0, seed=seed)  # overlapping blobs: local optima exist
    ours = KMeans(4, n_init=10, seed=seed).fit(x)
    ref = SkKMeans(4, n_init=10, random_state=seed).fit(x.double().numpy())
    assert ours.inertia_ <= ref.inertia_ * 1.01
    # inertia_ is what it claims to be
    d = squared_distances(x, ours.cluster_centers_)
    assert ours.inertia_ == pytest.approx(float(d.min(1).values.sum()), rel=1e-5)


def test_deterministic_for_fixed_seed() -> None:
    x, _ = _blobs(std=3.0)
    a = KMeans(4, n_init=2, seed=7).fit(x)
    b = KMeans(4, n_init=2, seed=7).fit(x)
    assert torch.equal(a.labels_, b.labels_)
    assert torch.equal(a.cluster_centers_, b.cluster_centers_)
    assert a.inertia_ == b.inertia_


def test_squared_distances_match_cdist() -> None:
    gen = torch.Generator().manual_seed(0)
    x, c = torch.randn(50, 4, generator=gen), torch.randn(6, 4, generator=gen)
    d = squared_distances(x, c)
    assert d.shape == (50, 6)
    assert torch.allclose(d, torch.cdist(x, c) ** 2, atol=1e-4)


def test_squared_distances_never_negative() -> None:
    gen = torch.Generator().manual_seed(0)
    x = 1000.0 + 1e-3 * torch.randn(200, 10, generator=gen)  # cancellation-prone float32
    d = squared_distances(x, x[:20])
    assert (d >= 0).all()


def test_embedding_equal_to_a_centre_gets_its_label_and_zero_distance() -> None:
    centres = torch.tensor([[0.0, 0.0], [5.0, 5.0], [-3.0, 4.0]])
    d = squared_distances(centres[[2, 0, 1]], centres)
    assert d.argmin(1).tolist() == [2, 0, 1]
    assert d.min(1).values.tolist() == [0.0, 0.0, 0.0]


def test_predict_equals_labels_on_training_data() -> None:
    x, _ = _blobs(std=2.0)
    km = KMeans(4, n_init=2, seed=0).fit(x)
    assert torch.equal(km.predict(x), km.labels_)
    assert torch.equal(km.fit_predict(x), km.labels_)


def test_as_many_clusters_as_samples() -> None:
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [5.0, 5.0], [9.0, 1.0]])
    km = KMeans(5, n_init=2, seed=0).fit(x)
    assert sorted(km.labels_.tolist()) == [0, 1, 2, 3, 4]
    assert km.inertia_ == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("seed", range(5))
def test_seeding_never_picks_a_point_twice_while_others_are_uncovered(seed: int) -> None:
    """D(x)^2 sampling: a chosen point has zero mass, so K distinct points give K distinct seeds."""
    x = torch.randn(7, 3, generator=torch.Generator().manual_seed(seed))
    centers = kmeans_plusplus(x, 7, torch.Generator().manual_seed(seed))
    assert sorted(torch.cdist(centers, x).argmin(1).tolist()) == list(range(7))


def test_seeding_follows_d_squared() -> None:
    """Two points at distance 1 and 3 from the first seed: picked 1:9 (inverse-CDF sampling)."""
    x = torch.tensor([[0.0], [1.0], [-3.0]])
    gen = torch.Generator().manual_seed(0)
    picks = [kmeans_plusplus(x[[0, 1, 2]], 2, gen) for _ in range(4000)]
    second = [float(c[1]) for c in picks if float(c[0]) == 0.0]
    share = second.count(-3.0) / len(second)
    assert abs(share - 0.9) < 0.04
