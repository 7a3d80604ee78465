from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans as SkKMeans
from sklearn.datasets import make_blobs

from dcflow.clustering import KMeans, squared_distances
from dcflow.clustering import kmeans as kmeans_module
from dcflow.clustering.chunks import assign, chunk_rows
from dcflow.clustering.metrics import cluster_acc
from dcflow.clustering.seeding import default_init_size, init_sample, kmeans_plusplus, local_trials


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


# ---------------------------------------------------------------- k-means at scale (issue 22)


def _big_blobs(
    n: int = 3000, k: int = 8, d: int = 16, std: float = 1.0, seed: int = 0
) -> torch.Tensor:
    x, _ = make_blobs(
        n_samples=n,
        centers=k,
        n_features=d,
        cluster_std=std,
        center_box=(-10, 10),
        random_state=seed,
    )
    return torch.from_numpy(x).float()


def test_chunked_assign_equals_unchunked() -> None:
    gen = torch.Generator().manual_seed(0)
    x, c = torch.randn(1000, 8, generator=gen), torch.randn(3, 12, 8, generator=gen)
    labels, dist = assign(x, c)
    labels7, dist7 = assign(x, c, chunk_size=7)  # 143 chunks, the last one short
    assert torch.equal(labels, labels7)
    assert torch.allclose(dist, dist7, atol=1e-5)
    ref = torch.stack([squared_distances(x, c[r]).min(1).values for r in range(3)], 1)
    assert torch.allclose(dist, ref, atol=1e-4)
    one, d1 = assign(x, c[1], chunk_size=100)  # [K, d] centres: [N] outputs
    assert torch.equal(one, labels[:, 1]) and d1.shape == (1000,)


def test_chunked_fit_equals_unchunked() -> None:
    x = _big_blobs(std=3.0)
    a = KMeans(8, n_init=3, seed=0).fit(x)
    b = KMeans(8, n_init=3, seed=0, chunk_size=97).fit(x)
    assert torch.equal(a.labels_, b.labels_)
    assert torch.allclose(a.cluster_centers_, b.cluster_centers_, atol=1e-5)
    assert a.inertia_ == pytest.approx(b.inertia_, rel=1e-6)
    assert a.n_iter_ == b.n_iter_
    assert torch.equal(a.predict(x), b.predict(x))


def test_chunk_rows_bounds_the_score_matrix() -> None:
    x = torch.zeros(10, 2)
    assert chunk_rows(x, 100) * 100 <= 1 << 19  # CPU: a cache-sized [rows, R K] chunk
    assert chunk_rows(x, 10**9) == 1
    assert chunk_rows(x, 100, chunk_size=5) == 5
    with pytest.raises(ValueError):
        chunk_rows(x, 100, chunk_size=0)


def test_onehot_sums_path_equals_index_add(monkeypatch: pytest.MonkeyPatch) -> None:
    """CUDA's deterministic one-hot centre sums give the CPU (``index_add_``) result."""
    x = _big_blobs(std=3.0)
    ref = KMeans(8, n_init=3, seed=1, chunk_size=500).fit(x)
    monkeypatch.setattr(kmeans_module, "onehot_sums", lambda device: True)
    onehot = KMeans(8, n_init=3, seed=1, chunk_size=500).fit(x)
    assert torch.equal(ref.labels_, onehot.labels_)
    assert torch.allclose(ref.cluster_centers_, onehot.cluster_centers_, atol=1e-4)
    mb = KMeans(8, n_init=1, seed=1, algorithm="minibatch", batch_size=64, max_iter=20).fit(x)
    assert mb.labels_.shape == (3000,)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_inertia_within_one_percent_of_sklearn_with_sampled_seeding(seed: int) -> None:
    """n_init=1 and a 500-point seeding sample of 3000 (greedy trials): sklearn's optimum."""
    x = _big_blobs(seed=seed)
    ours = KMeans(8, n_init=1, seed=seed, init_size=500).fit(x)
    ref = SkKMeans(8, n_init=1, random_state=seed).fit(x.numpy())
    assert ours.inertia_ <= ref.inertia_ * 1.01
    assert ours.inertia_ == pytest.approx(
        float(assign(x, ours.cluster_centers_)[1].sum()), rel=1e-5
    )


def test_sampled_seeding_is_deterministic_per_seed() -> None:
    x = _big_blobs(n=2000, k=20, std=2.0)
    fit = [KMeans(20, n_init=1, max_iter=1, seed=s, init_size=300).fit(x) for s in (3, 3, 4)]
    assert torch.equal(fit[0].cluster_centers_, fit[1].cluster_centers_)
    assert torch.equal(fit[0].labels_, fit[1].labels_)
    assert not torch.equal(fit[0].cluster_centers_, fit[2].cluster_centers_)
    sample, idx = init_sample(x, 300, torch.Generator().manual_seed(0))
    assert idx is not None and sample.shape == (300, 16)
    assert idx.unique().numel() == 300  # without replacement
    assert torch.equal(sample, x[idx])


def test_small_data_seeds_on_all_points_exactly_as_plain_kmeans_plusplus() -> None:
    """Up to ``init_size`` points nothing is sampled and seeding stays plain: callers' results
    on dcflow's data sets (at most 70,000 embeddings) keep their seeds bit for bit."""
    x = _big_blobs(n=500, std=3.0)
    sample, idx = init_sample(x, 500, torch.Generator().manual_seed(0))
    assert idx is None and sample is x
    km = KMeans(8, n_init=1, max_iter=1, seed=5, tol=0.0)
    seeds = km._seed(x, torch.Generator().manual_seed(5), default_init_size(8))
    assert torch.equal(seeds, kmeans_plusplus(x, 8, torch.Generator().manual_seed(5)))
    assert default_init_size(10) == 100_000 and default_init_size(5000) == 500_000
    assert local_trials(100, None) == 2 + 4 and local_trials(100, 1) == 1


def test_greedy_seeding_keeps_the_lowest_potential_candidate() -> None:
    x = _big_blobs(n=1000, k=10, std=2.0)

    def potential(c: torch.Tensor) -> float:
        return float(squared_distances(x, c).min(1).values.sum())

    plain = [potential(kmeans_plusplus(x, 10, torch.Generator().manual_seed(s))) for s in range(8)]
    greedy = [
        potential(kmeans_plusplus(x, 10, torch.Generator().manual_seed(s), n_local_trials=5))
        for s in range(8)
    ]
    assert np.mean(greedy) < np.mean(plain)
    with pytest.raises(ValueError):
        kmeans_plusplus(x, 3, torch.Generator(), n_local_trials=0)


def test_minibatch_reduces_inertia_over_iterations() -> None:
    """Sculley (2010): more mini-batch steps, lower inertia, close to Lloyd's at the end."""
    x = _big_blobs(n=4000, std=2.0)
    inertia = [
        KMeans(8, n_init=1, seed=0, algorithm="minibatch", batch_size=50, max_iter=m, tol=0.0)
        .fit(x)
        .inertia_
        for m in (1, 5, 50, 200)
    ]
    assert all(b <= a * 1.001 for a, b in zip(inertia, inertia[1:], strict=False))
    assert inertia[-1] < inertia[0]
    lloyd = KMeans(8, n_init=1, seed=0).fit(x).inertia_
    assert inertia[-1] <= lloyd * 1.02


def test_minibatch_learning_rate_is_one_over_count() -> None:
    """Sculley's per-centre rate ``1 / v``: each centre is the running mean of every point ever
    assigned to it, so on two clusters {0, 1} and {10, 12} it settles at 0.5 and 11."""
    x = torch.tensor([[0.0], [1.0], [10.0], [12.0]])
    km = KMeans(2, n_init=1, seed=0, algorithm="minibatch", batch_size=4, max_iter=1, tol=0.0)
    km._seed = lambda x, gen, size: torch.tensor([[0.0], [11.0]])  # type: ignore[method-assign]
    one = km.fit(x).cluster_centers_.flatten().tolist()  # the mean of the first batch's points
    assert 0.0 <= one[0] <= 1.0 and 10.0 <= one[1] <= 12.0
    km.max_iter = 1000
    assert km.fit(x).cluster_centers_.flatten().tolist() == pytest.approx([0.5, 11.0], abs=0.05)
    assert km.labels_.tolist() == [0, 0, 1, 1] and km.n_iter_ == 1000


def test_backend_choice() -> None:
    assert KMeans(3).resolved_backend(torch.device("cpu")) == "torch"
    auto = KMeans(3, backend="auto")
    assert auto.resolved_backend(torch.device("cpu")) == "sklearn"
    assert auto.resolved_backend(torch.device("cuda")) == "torch"
    mb = KMeans(3, backend="auto", algorithm="minibatch")
    assert mb.resolved_backend(torch.device("cpu")) == "torch"
    with pytest.raises(ValueError):
        KMeans(3, backend="sklearn", algorithm="minibatch")
    with pytest.raises(ValueError):
        KMeans(3, backend="numpy")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        KMeans(3, algorithm="elkan")  # type: ignore[arg-type]


def test_sklearn_backend_runs_lloyd_from_the_same_seeds() -> None:
    x = _big_blobs(std=3.0)
    ours = KMeans(8, n_init=3, seed=2).fit(x)
    sk = KMeans(8, n_init=3, seed=2, backend="auto").fit(x)
    assert sk.labels_.dtype == torch.int64 and sk.labels_.device == x.device
    assert sk.cluster_centers_.dtype == x.dtype and sk.cluster_centers_.shape == (8, 16)
    assert sk.inertia_ == pytest.approx(ours.inertia_, rel=1e-4)
    assert cluster_acc(ours.labels_.numpy(), sk.labels_.numpy()) == 1.0
    assert torch.equal(sk.predict(x), sk.labels_)


def test_kmeans_bench_runs_small() -> None:
    """benchmarks/kmeans_bench.py end to end on 400 points: every row, one table."""
    from benchmarks import kmeans_bench

    args = argparse.Namespace(
        n=400, d=4, k=3, std=1.0, max_iter=20, tol=1e-4, batch_size=64, seed=0, seeds=2,
        rounds=1, threads=1, device="cpu", json=None,
    )  # fmt: skip
    rows = kmeans_bench.run(args)
    assert len(rows) >= 5 and all(r["inertia"] > 0 and r["seconds"] > 0 for r in rows.values())
    lines = kmeans_bench.table(rows, args, 1)
    assert lines[2].startswith("| implementation") and len(lines) == 4 + len(rows)
    assert "| +0.00% |" in lines[4]  # scikit-learn against itself
