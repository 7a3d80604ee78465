"""Adaptive self-paced selection of ASPC-DA (Guo et al., TKDE 2019, Eq. for v_i).

With clean losses ``L_i = min_k ||f(x_i) - mu_k||^2``, iteration ``t`` of ``T_max`` keeps the
samples strictly below ``lambda_t = mean(L) + (t / T_max) * std(L)`` (population std, ddof 0). The
threshold loosens as ``t`` grows, from about the easier half to "below mean + 1 std".
"""

from __future__ import annotations

import torch


def self_paced_threshold(losses: torch.Tensor, t: int, t_max: int) -> float:
    """``lambda_t = mean(L) + (t / T_max) * std(L)`` with ddof 0."""
    if t_max <= 0:
        raise ValueError("t_max must be positive")
    losses = losses.double()
    return float(losses.mean() + (t / t_max) * losses.std(unbiased=False))


def self_paced_weights(losses: torch.Tensor, t: int, t_max: int) -> tuple[torch.Tensor, float]:
    """Hard weights ``v_i = 1[L_i < lambda_t]`` (``[N]`` float32) and the threshold used."""
    lam = self_paced_threshold(losses, t, t_max)
    return (losses.double() < lam).float(), lam
