"""Confident-sample selectors: pure functions from scores to masks, weights or labels."""

from dcflow.selection.self_paced import (
    per_cluster_self_paced_weights,
    self_paced_threshold,
    self_paced_weights,
)

__all__ = ["per_cluster_self_paced_weights", "self_paced_threshold", "self_paced_weights"]
