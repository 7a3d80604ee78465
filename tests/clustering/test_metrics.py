from __future__ import annotations

import itertools

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from dcflow.clustering.metrics import (
    cluster_acc,
    cluster_metrics,
    contingency,
    expected_calibration_error,
    hungarian_mapping,
)


def brute_force_acc(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Best one-to-one cluster -> class map by trying every permutation."""
    n = max(int(y_true.max()), int(y_pred.max())) + 1
    best = 0
    for perm in itertools.permutations(range(n)):
        best = max(best, int((np.asarray(perm)[y_pred] == y_true).sum()))
    return best / y_true.size


@pytest.mark.parametrize("trial", range(20))
def test_acc_matches_brute_force_on_random_cases(trial: int) -> None:
    rng = np.random.default_rng(trial)
    k_true, k_pred = int(rng.integers(2, 5)), int(rng.integers(2, 5))
    n = int(rng.integers(5, 30))
    y_true = rng.integers(0, k_true, n)
    y_pred = rng.integers(0, k_pred, n)
    assert cluster_acc(y_true, y_pred) == pytest.approx(brute_force_acc(y_true, y_pred))


@pytest.mark.parametrize(
    ("y_true", "y_pred", "expected"),
    [
        ([0, 0, 0, 1, 1, 2], [1, 1, 0, 0, 0, 2], 5 / 6),
        ([0, 0, 1, 1], [1, 1, 0, 0], 1.0),
        ([0, 0, 1, 1], [0, 0, 0, 0], 0.5),
        ([0, 1, 2, 0, 1, 2], [0, 0, 0, 1, 1, 1], 2 / 6),
    ],
)
def test_acc_hand_made_cases(y_true: list[int], y_pred: list[int], expected: float) -> None:
    assert cluster_acc(np.array(y_true), np.array(y_pred)) == pytest.approx(expected)


def test_acc_of_labels_against_themselves_is_one(rng: np.random.Generator) -> None:
    y = rng.integers(0, 10, 200)
    assert cluster_acc(y, y) == 1.0


def test_metrics_invariant_to_permuting_predicted_ids(rng: np.random.Generator) -> None:
    y_true = rng.integers(0, 4, 100)
    y_pred = np.where(rng.random(100) < 0.7, y_true, rng.integers(0, 4, 100))
    perm = np.array([2, 3, 1, 0])
    before = cluster_metrics(y_true, y_pred)
    after = cluster_metrics(y_true, perm[y_pred])
    assert before["acc"] < 1.0
    for key in ("acc", "nmi", "ari"):
        assert after[key] == pytest.approx(before[key], abs=1e-12)


def test_acc_more_clusters_than_classes() -> None:
    y_true = np.array([0, 0, 1, 1])
    y_pred = np.array([0, 1, 2, 2])  # class 0 split over two clusters: one cluster stays unmatched
    assert cluster_acc(y_true, y_pred) == pytest.approx(0.75)
    mapping = hungarian_mapping(y_true, y_pred)
    assert sorted(mapping) == [0, 1, 2]
    assert mapping[2] == 1
    assert sorted(mapping[p] for p in (0, 1)) == [-1, 0]


def test_acc_with_an_empty_cluster() -> None:
    y_true = np.array([0, 0, 1, 1, 2])
    y_pred = np.array([0, 0, 3, 3, 2])  # cluster 1 is empty
    assert contingency(y_true, y_pred).shape == (4, 3)
    assert contingency(y_true, y_pred)[1].sum() == 0
    assert cluster_acc(y_true, y_pred) == 1.0


def test_nmi_and_ari_equal_sklearn(rng: np.random.Generator) -> None:
    y_true = rng.integers(0, 5, 300)
    y_pred = np.where(rng.random(300) < 0.6, y_true, rng.integers(0, 6, 300))
    out = cluster_metrics(y_true, y_pred)
    assert out["nmi"] == pytest.approx(normalized_mutual_info_score(y_true, y_pred), abs=1e-12)
    assert out["ari"] == pytest.approx(adjusted_rand_score(y_true, y_pred), abs=1e-12)


def _ece_case() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # conf 0.9, 0.8 (bin (0.75, 1]) and 0.6, 0.7 (bin (0.5, 0.75]) with n_bins=4;
    # Hungarian map is the identity; correct = [1, 0, 1, 1].
    proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.4, 0.6], [0.3, 0.7]])
    y_true = np.array([0, 1, 1, 1])
    return proba, y_true, proba.argmax(1)


def test_ece_hand_computation() -> None:
    proba, y_true, y_pred = _ece_case()
    # bin 4: |1 - (0.9 + 0.8)| = 0.7; bin 3: |2 - (0.6 + 0.7)| = 0.7; ECE = 1.4 / 4
    assert expected_calibration_error(proba, y_true, y_pred, n_bins=4) == pytest.approx(0.35)
    # one bin: |3 correct - 3.0 total confidence| / 4 = 0
    assert expected_calibration_error(proba, y_true, y_pred, n_bins=1) == pytest.approx(0.0)


def test_ece_uses_hungarian_mapping() -> None:
    proba, y_true, y_pred = _ece_case()
    swapped = 1 - y_pred  # same clustering, other ids: the mapping absorbs the swap
    assert expected_calibration_error(proba, y_true, swapped, n_bins=4) == pytest.approx(0.35)


def test_ece_zero_when_perfectly_calibrated() -> None:
    proba = np.tile([0.75, 0.25], (8, 1))
    y_true = np.array([0, 0, 0, 1, 0, 0, 0, 1])  # 6 of 8 correct = mean confidence 0.75
    y_pred = np.zeros(8, dtype=np.int64)
    assert expected_calibration_error(proba, y_true, y_pred, n_bins=10) == pytest.approx(0.0)


def test_ece_fully_overconfident() -> None:
    proba = np.tile([1.0, 0.0], (4, 1))
    y_true = np.array([0, 0, 1, 1])
    y_pred = np.zeros(4, dtype=np.int64)
    assert expected_calibration_error(proba, y_true, y_pred, n_bins=15) == pytest.approx(0.5)


def test_cluster_metrics_keys() -> None:
    proba, y_true, y_pred = _ece_case()
    assert set(cluster_metrics(y_true, y_pred)) == {"acc", "nmi", "ari"}
    with_proba = cluster_metrics(y_true, y_pred, proba)
    assert set(with_proba) == {"acc", "nmi", "ari", "ece", "mean_confidence"}
    assert with_proba["mean_confidence"] == pytest.approx(0.75)
    assert with_proba["acc"] == pytest.approx(0.75)
    assert all(isinstance(v, float) for v in with_proba.values())
