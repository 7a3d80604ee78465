"""Confident-sample selectors: pure functions from scores to masks, weights or labels."""

from dcflow.selection.self_paced import self_paced_threshold, self_paced_weights

__all__ = ["self_paced_threshold", "self_paced_weights"]
