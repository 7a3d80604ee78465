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


def per_cluster_self_paced_weights(
    losses: torch.Tensor, labels: torch.Tensor, k: int, t: int, t_max: int
) -> tuple[torch.Tensor, float]:
    """Self-paced weights with one threshold per cluster (a dcflow option, not in the paper).

    ``v_i = 1[L_i < mean_c(L) + (t / T_max) std_c(L)]`` over the members of ``i``'s cluster
    ``c = labels_i`` (ddof 0), so a loose cluster keeps its own easiest part instead of losing
    all its members to the global threshold. Returns the weights and the mean threshold.
    """
    if t_max <= 0:
        raise ValueError("t_max must be positive")
    loss, lab = losses.double(), labels.long()
    count = torch.bincount(lab, minlength=k).double()
    mean = torch.zeros(k, dtype=loss.dtype, device=loss.device).index_add_(0, lab, loss)
    mean = mean / count.clamp_min(1)
    sq = torch.zeros(k, dtype=loss.dtype, device=loss.device).index_add_(0, lab, loss * loss)
    std = (sq / count.clamp_min(1) - mean * mean).clamp_min(0).sqrt()
    thr = mean + (t / t_max) * std
    return (loss < thr[lab]).float(), float(thr[count > 0].mean())
