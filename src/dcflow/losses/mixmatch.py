"""MixMatch-style pieces of RUC's robust refine.

Berthelot et al., "MixMatch", NeurIPS 2019 (sharpening Eq. 7, MixUp Eq. 8-11); Li et al.,
"DivideMix", ICLR 2020 (co-refinement of labels); Park et al., "Improving Unsupervised Image
Clustering With Robust Learning" (RUC), CVPR 2021, section 3.2: ``L = L_X + lambda_u * r * L_U +
L_S`` with label smoothing in ``L_S``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def sharpen(p: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """``p_c^(1/T) / sum_c' p_c'^(1/T)`` row-wise on ``[B, K]``."""
    q = p.pow(1.0 / temperature)
    return q / q.sum(1, keepdim=True)


def smooth_targets(labels: torch.Tensor, n_classes: int, eps: float) -> torch.Tensor:
    """Label smoothing ``[B, K]``: ``1 - eps`` on the label, ``eps / (K - 1)`` elsewhere."""
    out = torch.full((labels.shape[0], n_classes), eps / (n_classes - 1), device=labels.device)
    return out.scatter_(1, labels.view(-1, 1), 1.0 - eps)


def mixup(
    x: torch.Tensor, t: torch.Tensor, alpha: float, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """MixUp with ``lambda' = max(lambda, 1 - lambda)``, ``lambda ~ Beta(alpha, alpha)``.

    Args:
        x: inputs ``[M, ...]``.
        t: soft targets ``[M, K]``.
        alpha: Beta parameter (4 in RUC).
        gen: CPU generator (draws lambda and the permutation).

    Returns:
        ``(mixed inputs, mixed targets, lambda')``; one permutation pairs every row with another.
    """
    seed = int(torch.randint(0, 2**62, (1,), generator=gen))
    lam = float(np.random.default_rng(seed).beta(alpha, alpha))
    lam = max(lam, 1.0 - lam)
    perm = torch.randperm(x.shape[0], generator=gen).to(x.device)
    return lam * x + (1 - lam) * x[perm], lam * t + (1 - lam) * t[perm], lam


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Soft cross-entropy ``-(1/M) sum_i sum_c t_ic log softmax(z_i)_c`` (``L_X``; ``L_S``)."""
    return soft_cross_entropy_sum(logits, targets) / logits.shape[0]


def soft_cross_entropy_sum(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``-sum_i sum_c t_ic log softmax(z_i)_c``: :func:`soft_cross_entropy` times the rows.

    The data-parallel form: each process sums its rows and divides by the global count.
    """
    return -(targets * F.log_softmax(logits, dim=1)).sum()


def mse_probs_sum(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``sum_i sum_c (softmax(z_i)_c - t_ic)^2``: :func:`mse_probs` times rows and classes."""
    return ((F.softmax(logits, dim=1) - targets) ** 2).sum()


def mse_probs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``L_U``: mean over rows and classes of ``(softmax(z)_c - t_c)^2``."""
    return mse_probs_sum(logits, targets) / logits.numel()


def ramp(epoch: int, batch: int, n_batches: int, ramp_epochs: float) -> float:
    """Unlabelled-loss weight ``r = clip((e + b / n_batches) / E_ramp, 0.1, 1)``."""
    return float(min(1.0, max(0.1, (epoch + batch / n_batches) / ramp_epochs)))
