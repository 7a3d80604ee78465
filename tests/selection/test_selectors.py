from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dcflow.selection import (
    per_cluster_self_paced_weights,
    self_paced_threshold,
    self_paced_weights,
)

L4 = torch.tensor([1.0, 2.0, 3.0, 4.0])


def test_threshold_at_start_is_the_mean() -> None:
    weights, lam = self_paced_weights(L4, 0, 4)
    assert lam == pytest.approx(2.5)
    assert weights.tolist() == [1.0, 1.0, 0.0, 0.0]
    assert weights.dtype == torch.float32


def test_threshold_at_end_is_mean_plus_std() -> None:
    weights, lam = self_paced_weights(L4, 4, 4)
    assert lam == pytest.approx(2.5 + math.sqrt(1.25))
    assert lam == pytest.approx(3.618, abs=1e-3)
    assert weights.tolist() == [1.0, 1.0, 1.0, 0.0]


def test_threshold_halfway() -> None:
    assert self_paced_threshold(L4, 2, 4) == pytest.approx(2.5 + 0.5 * math.sqrt(1.25))


def test_sample_exactly_at_threshold_is_excluded() -> None:
    weights, lam = self_paced_weights(torch.tensor([1.0, 2.0, 3.0]), 0, 10)
    assert lam == 2.0
    assert weights.tolist() == [1.0, 0.0, 0.0]


def test_population_std_ddof_zero() -> None:
    weights, lam = self_paced_weights(torch.tensor([1.0, 3.0]), 5, 5)
    assert lam == pytest.approx(3.0)  # mean 2 + std 1 (ddof 1 would give 2 + 1.414)
    assert weights.tolist() == [1.0, 0.0]


@pytest.mark.parametrize("seed", range(5))
def test_selected_count_non_decreasing_in_t(seed: int) -> None:
    losses = torch.from_numpy(np.random.default_rng(seed).exponential(size=500)).float()
    counts = [float(self_paced_weights(losses, t, 20)[0].sum()) for t in range(21)]
    assert counts == sorted(counts)
    assert counts[-1] > counts[0]


@pytest.mark.parametrize("t_max", [0, -1])
def test_non_positive_t_max_raises(t_max: int) -> None:
    with pytest.raises(ValueError, match="t_max"):
        self_paced_threshold(L4, 0, t_max)


def test_per_cluster_thresholds_by_hand() -> None:
    # cluster 0 is tight (losses 1, 2, 3), cluster 1 loose (10, 20, 30, 40)
    losses = torch.tensor([1.0, 2.0, 3.0, 10.0, 20.0, 30.0, 40.0])
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 1])
    v, lam = per_cluster_self_paced_weights(losses, labels, 3, 0, 10)
    # t = 0: below each cluster's mean (2 and 25); the global mean (15.1) would keep 1, 2, 3, 10
    assert v.tolist() == [1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0]
    assert lam == pytest.approx((2.0 + 25.0) / 2)  # mean over the non-empty clusters
    assert self_paced_weights(losses, 0, 10)[0].tolist() == [1, 1, 1, 1, 0, 0, 0]
    # t = T_max: mean + population std per cluster (std 0.816 and 11.18)
    v, _ = per_cluster_self_paced_weights(losses, labels, 3, 10, 10)
    assert v.tolist() == [1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0]


def test_per_cluster_equals_global_with_one_cluster() -> None:
    losses = torch.rand(100, generator=torch.Generator().manual_seed(0))
    for t in (0, 3, 10):
        a = per_cluster_self_paced_weights(losses, torch.zeros(100, dtype=torch.long), 1, t, 10)
        b = self_paced_weights(losses, t, 10)
        assert torch.equal(a[0], b[0]) and a[1] == pytest.approx(b[1])
