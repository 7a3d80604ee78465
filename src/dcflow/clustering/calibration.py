"""Label-free temperature scaling of a two-network ensemble (RUC's co-trained pair).

Temperature scaling (Guo et al., On calibration of modern neural networks, ICML 2017, Sec. 4.2)
divides the logits by one scalar ``T``: each network's argmax, and RUC's assignment
``argmax(z1 + z2)``, stay as they are; only the probabilities (and so the ECE) change.
Guo et al. fit ``T`` on labelled validation data; a clustering run has none. The two networks'
agreement rate stands in for the accuracy instead: for independently trained networks the rate at
which they disagree tracks the test error (Jiang et al., Assessing generalization of SGD via
disagreement, ICLR 2022). ``T`` is chosen so that the ensemble's mean confidence equals that
agreement rate:

    mean_i max_k (softmax(z1_i / T) + softmax(z2_i / T))_k / 2 = mean_i [argmax z1_i = argmax z2_i]

RUC's pair is co-trained, not independent, so the agreement over-estimates the accuracy, and the
calibrated ensemble stays somewhat over-confident by that gap: the fix is for RUC's label
smoothing (eps 0.5 keeps every softmax far below the accuracy), not a guarantee of calibration.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

T_MIN, T_MAX = 1e-2, 1e2


def ensemble_proba(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """``(softmax(z1 / T) + softmax(z2 / T)) / 2`` ``[N, K]``."""
    return (F.softmax(z1 / temperature, dim=1) + F.softmax(z2 / temperature, dim=1)) / 2


def agreement_temperature(z1: torch.Tensor, z2: torch.Tensor, steps: int = 60) -> float:
    """``T`` whose mean ensemble confidence equals the two networks' agreement (module docstring).

    The mean confidence falls as ``T`` grows, so ``T`` is found by bisection on ``log T`` within
    ``[T_MIN, T_MAX]`` (clipped there when the target lies outside what that range reaches).
    """
    target = float((z1.argmax(1) == z2.argmax(1)).float().mean())

    def confidence(t: float) -> float:
        return float(ensemble_proba(z1, z2, t).max(1).values.mean())

    lo, hi = math.log(T_MIN), math.log(T_MAX)
    if confidence(T_MIN) <= target:
        return T_MIN
    if confidence(T_MAX) >= target:
        return T_MAX
    for _ in range(steps):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if confidence(math.exp(mid)) > target else (lo, mid)
    return math.exp((lo + hi) / 2)
