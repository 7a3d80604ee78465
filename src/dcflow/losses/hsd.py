"""Hardness-aware self-distillation (HSD) of HaDis.

H.-X. Zhang, D. Huang, "Deep Clustering with Diffused Sampling and Hardness-aware
Self-distillation", arXiv 2401.14038 (2024), Sec. III-C, after H. Liu, M. Ye, "Improving
Self-supervised Lightweight Model Learning via Hard-Aware Metric Distillation", ECCV 2022.
Re-implemented from docs/specs/hadis.md §4.2.

Upstream defect handled (docs/specs/hadis.md pitfall 11): rows without a negative used a
placeholder distance of 1e5, which overflows float16 (max 65504) and gives ``inf * 0 = NaN`` under
mixed precision. Here the loss is computed in float32 and rows without a negative are masked with
booleans, so no placeholder ever enters the arithmetic.

Under data-parallel training each process's anchors search their hardest pairs in the global
batch: the student rows are gathered with gradients, the teacher rows as constants.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from dcflow.train.distributed import gather_batch, gather_constant

SQ_CLAMP = 1e-12
"""Squared distances are clamped here before the square root (finite gradient at 0)."""


def _pairwise(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``[B, B]`` Euclidean distances ``||a_i - b_j||`` with the squared value clamped."""
    sq = (a * a).sum(1, keepdim=True) - 2.0 * a @ b.T + (b * b).sum(1)[None, :]
    return sq.clamp_min(SQ_CLAMP).sqrt()


def hsd_loss(
    student: torch.Tensor,
    teacher: torch.Tensor,
    temperature: float = 0.5,
    reduction: Literal["mean", "none"] = "mean",
) -> torch.Tensor:
    """Soft-triplet distillation of the teacher's geometry on each anchor's hardest pair.

    ``D^T_ij = ||t_i - t_j||``, ``D_ij = ||t_i - s_j||``. Negatives of anchor ``i``: ``j`` with
    ``D^T_ij > D_ii``; every other ``j`` (always ``i`` itself) is a positive. Hardest negative
    ``n = argmin D_ij`` over negatives, hardest positive ``p = argmax D_ij`` over positives; weights
    ``w_n = max(D^T_in - D_in, 0)``, ``w_p = max(D_ip - D^T_ip, 0)`` (detached);
    ``l_i = log(1 + exp((w_p D_ip - w_n D_in) / tau_h))``.

    Args:
        student: ``[B, d]`` student embeddings (predictor outputs; normalised here).
        teacher: ``[B, d]`` teacher embeddings (target network; normalised, detached here).
        temperature: ``tau_h`` (0.5, hard-coded upstream).
        reduction: ``mean`` (the loss) or ``none`` (per-anchor ``[B]`` values).

    Returns:
        Scalar ``>= 0`` (or ``[B]``); ``ln 2`` with zero gradient when the student equals the
        teacher; below ``ln 2`` for an anchor with ``w_n > 0`` and ``w_p = 0``.
    """
    big_s, offset = gather_batch(student.float())
    s = F.normalize(big_s, dim=1)
    t_all = F.normalize(gather_constant(teacher.detach().float()), dim=1)
    rows = torch.arange(student.shape[0], device=student.device)
    t = t_all[rows + offset]  # this process's anchors
    d_t = _pairwise(t, t_all)  # [B, B_all] teacher-teacher
    d_s = _pairwise(t, s)  # [B, B_all] teacher anchor vs student
    own = d_s[rows, rows + offset]  # D_ii
    negative = d_t > own[:, None].detach()
    has_neg = negative.any(1)  # [B]
    big = torch.finfo(d_s.dtype).max
    n = d_s.detach().masked_fill(~negative, big).argmin(1, keepdim=True)  # [B, 1]
    p = d_s.detach().masked_fill(negative, -1.0).argmax(1, keepdim=True)  # [B, 1]
    d_n, d_p = d_s.gather(1, n).squeeze(1), d_s.gather(1, p).squeeze(1)
    dt_n, dt_p = d_t.gather(1, n).squeeze(1), d_t.gather(1, p).squeeze(1)
    w_n = torch.where(has_neg, (dt_n - d_n).clamp_min(0.0), torch.zeros_like(d_n)).detach()
    w_p = (d_p - dt_p).clamp_min(0.0).detach()
    logit = (w_p * d_p - torch.where(has_neg, w_n * d_n, torch.zeros_like(d_n))) / temperature
    per_anchor = F.softplus(logit)
    return per_anchor if reduction == "none" else per_anchor.mean()
