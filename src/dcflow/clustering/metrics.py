"""Clustering metrics: Hungarian ACC, NMI, ARI and expected calibration error.

ACC matches predicted clusters to classes one-to-one with ``scipy.optimize.linear_sum_assignment``
on the (possibly rectangular) contingency table and sums the matched counts. NMI uses sklearn's
default arithmetic averaging (``average_method='arithmetic'``, the default since sklearn 0.22).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

NMI_AVERAGE = "arithmetic"


def contingency(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Counts ``C[p, t]`` of samples predicted ``p`` with true class ``t``."""
    n_p = int(y_pred.max()) + 1
    n_t = int(y_true.max()) + 1
    table = np.zeros((n_p, n_t), dtype=np.int64)
    np.add.at(table, (y_pred, y_true), 1)
    return table


def hungarian_mapping(y_true: np.ndarray, y_pred: np.ndarray) -> dict[int, int]:
    """Best one-to-one map predicted cluster -> class (unmatched clusters map to -1)."""
    table = contingency(np.asarray(y_true), np.asarray(y_pred))
    rows, cols = linear_sum_assignment(-table)
    mapping = {int(p): -1 for p in range(table.shape[0])}
    mapping.update({int(r): int(c) for r, c in zip(rows, cols, strict=True)})
    return mapping


def cluster_acc(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Unsupervised accuracy: fraction correct under the best one-to-one cluster->class map."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    table = contingency(y_true, y_pred)
    rows, cols = linear_sum_assignment(-table)
    return float(table[rows, cols].sum()) / y_true.size


def expected_calibration_error(
    proba: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, n_bins: int = 15
) -> float:
    """ECE of the max-probability confidence after Hungarian matching (Guo et al., ICML 2017).

    A sample is correct when its mapped cluster equals its class. Bins are equal-width on
    ``(0, 1]``; ECE = sum_b |B_b|/N * |acc(B_b) - conf(B_b)|.

    Args:
        proba: ``[N, K]`` cluster probabilities (rows sum to 1).
        y_true: ``[N]`` class labels.
        y_pred: ``[N]`` predicted clusters (usually ``proba.argmax(1)``).
        n_bins: number of confidence bins.
    """
    mapping = hungarian_mapping(y_true, y_pred)
    mapped = np.array([mapping[int(p)] for p in range(int(y_pred.max()) + 1)])[y_pred]
    correct = (mapped == y_true).astype(np.float64)
    conf = np.asarray(proba, dtype=np.float64).max(axis=1)
    bins = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
    counts = np.bincount(bins, minlength=n_bins)
    acc_sum = np.bincount(bins, weights=correct, minlength=n_bins)
    conf_sum = np.bincount(bins, weights=conf, minlength=n_bins)
    nonzero = counts > 0
    gaps = np.abs(acc_sum[nonzero] - conf_sum[nonzero])
    return float(gaps.sum() / conf.size)


def cluster_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None = None
) -> dict[str, float]:
    """Flat metrics dict (acc, nmi, ari[, ece, mean_confidence]) ready for MLflow."""
    out = {
        "acc": cluster_acc(y_true, y_pred),
        "nmi": float(normalized_mutual_info_score(y_true, y_pred, average_method=NMI_AVERAGE)),
        "ari": float(adjusted_rand_score(y_true, y_pred)),
    }
    if proba is not None:
        out["ece"] = expected_calibration_error(proba, y_true, y_pred)
        out["mean_confidence"] = float(np.asarray(proba).max(axis=1).mean())
    return out
