"""Losses of Self-CC (Wang et al., "Self-Correcting Clustering", IEEE TKDE 37(3), 2025).

The paper text was not available; formulas follow docs/specs/self-cc.md (§4.1,
4.4 and 4.5), which re-reads the authors' released code. Every function is device-agnostic.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from dcflow.clustering import squared_distances


def log_membership(
    z: torch.Tensor, centers: torch.Tensor, m: float, eps: float = 1e-12
) -> torch.Tensor:
    """Log fuzzy-c-means memberships in log space (docs/specs/self-cc.md §4.1; pitfall 5).

    ``u_ik = d_ik^{-2/(m-1)} / sum_j d_ij^{-2/(m-1)} = softmax_k(-(1/(m-1)) log(d2_ik + eps))``.
    The power form overflows float32 for small distances; this form stays finite even when a code
    equals a centre.

    Args:
        z: ``[N, d]`` codes.
        centers: ``[K, d]`` centres (rows are centres; pitfall 4).
        m: fuzzifier > 1.
        eps: added to the squared distances before the log.

    Returns:
        ``[N, K]`` log-memberships (``exp`` rows sum to 1).
    """
    if centers.dim() != 2 or centers.shape[1] != z.shape[1]:
        raise ValueError(f"centers must be [K, {z.shape[1]}], got {list(centers.shape)}")
    d2 = squared_distances(z, centers)
    return torch.log_softmax(-torch.log(d2 + eps) / (m - 1.0), dim=1)


def warmup_loss(logits: torch.Tensor, targets: torch.Tensor, gamma: float = 1.0) -> torch.Tensor:
    """RTDS warm-up loss ``CE(h(x), y) + gamma * mean_i sum_c p_ic log p_ic``.

    docs/specs/self-cc.md §4.4.1.

    The second term is the negative entropy (DivideMix's confidence penalty): minimising it
    makes predictions *less* confident. On uniform logits it equals ``-ln K`` and cancels CE.

    Args:
        logits: ``[B, K]``.
        targets: ``[B]`` int64 pseudo-labels.
        gamma: weight of the penalty.
    """
    logp = torch.log_softmax(logits, dim=1)
    neg_entropy = (logp.exp() * logp).sum(1).mean()
    return F.nll_loss(logp, targets) + gamma * neg_entropy


def sharpen(p: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """MixMatch sharpening ``p_c^(1/T) / sum_c' p_c'^(1/T)`` over the last dim ``[..., K]``."""
    q = p.clamp_min(0.0) ** (1.0 / temperature)
    return q / q.sum(-1, keepdim=True).clamp_min(1e-12)


def mixup_lambda(alpha: float, draws: int, gen: torch.Generator) -> float:
    """Upstream's mixing weight: the mean of ``max(b, 1 - b)`` over ``draws`` Beta(alpha, alpha).

    With alpha 0.3 and 300 draws it is about 0.866 (docs/specs/self-cc.md §4.4.5), nearly a
    constant.
    """
    seed = int(torch.randint(2**31 - 1, (1,), generator=gen).item())
    b = np.random.default_rng(seed).beta(alpha, alpha, size=draws)
    return float(np.maximum(b, 1.0 - b).mean())


def prior_penalty(p_mean: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """``R = sum_c pi_c log(pi_c / p_hat_c)`` (docs/specs/self-cc.md §4.4.5): 0 iff ``p_hat == pi``.

    Args:
        p_mean: ``[K]`` batch-mean prediction ``p_hat``.
        prior: ``[K]`` target class prior ``pi`` (uniform 1/K here; upstream used 1/A).
    """
    return (prior * (torch.log(prior) - torch.log(p_mean.clamp_min(1e-12)))).sum()


def mixmatch_loss(
    logits_x: torch.Tensor,
    targets_x: torch.Tensor,
    logits_u: torch.Tensor | None,
    targets_u: torch.Tensor | None,
    sigma: float,
    faithful_views: int = 0,
) -> torch.Tensor:
    """Co-training loss of one batch (docs/specs/self-cc.md §4.4.5).

    ``L = -mean_i sum_c y'_ic log softmax(h(x'_i))_c + sigma * MSE(softmax(h(u')), y'_u)
    + sum_c pi_c log(pi_c / p_hat_c)`` with ``p_hat`` the batch mean of ``softmax(h(x'))`` and
    ``pi_c = 1/K``. ``faithful_views = A > 0`` reproduces the released code (pitfall 2): MSE on
    logits and ``pi_c = 1/A``.

    Args:
        logits_x: ``[B, K]`` logits of mixed labelled inputs ``x'``.
        targets_x: ``[B, K]`` mixed soft targets.
        logits_u: ``[B', K]`` logits of mixed unlabelled inputs, or ``None``.
        targets_u: ``[B', K]`` their mixed soft targets, or ``None``.
        sigma: weight of the unlabelled term.
        faithful_views: 0 for the fixed loss, else A for the released variant.
    """
    k = logits_x.shape[1]
    logp = torch.log_softmax(logits_x, dim=1)
    loss = -(targets_x * logp).sum(1).mean()
    if logits_u is not None and targets_u is not None and logits_u.numel() and sigma != 0.0:
        pred_u = logits_u if faithful_views else torch.softmax(logits_u, dim=1)
        loss = loss + sigma * F.mse_loss(pred_u, targets_u)
    pi = 1.0 / (faithful_views or k)
    prior = torch.full((k,), pi, device=logits_x.device, dtype=logits_x.dtype)
    return loss + prior_penalty(logp.exp().mean(0), prior)


def module_update_loss(log_u: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Clustering-module loss ``-(1/B) sum_i log u_{i, y_i}`` = batch-mean KL(onehot || u) (4.5).

    Args:
        log_u: ``[B, K]`` log-memberships from :func:`log_membership`.
        target: ``[B]`` int64 targets ``argmax_k Q_ik``.
    """
    return F.nll_loss(log_u, target)
