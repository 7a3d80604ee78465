"""ULDC refine losses: C3 contrast, Dirichlet evidential loss and similarity-distribution matching.

Re-implemented from docs/specs/uldc.md §4.3 (ULDC, Applied Intelligence 2024, built on
C3: Sadeghi et al., BMVC 2023, Eq. 4; evidential loss after DECL, Qin et al., ACM MM 2022; SDM after
IRRA, Jiang & Ye, CVPR 2023). Notation: ``B`` batch, ``S = z1 z2^T`` the ``[B, B]`` cross-view
cosine matrix of L2-normalised embeddings, ``Y`` the ``[B, B]`` 0/1 partner indicator.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def c3_loss(z1: torch.Tensor, z2: torch.Tensor, zeta: float = 0.6) -> torch.Tensor:
    """C3 cross-instance loss (docs/specs/uldc.md §4.3a).

    ``s = Z Z^T`` for ``Z = [z1; z2]`` (``[2B, 2B]``, no temperature). Row ``i``'s positives are
    ``{j : s_ij > zeta}`` plus ``i`` itself and its other view. The sum over the ``2B`` rows of
    ``-ln(sum_pos e^s / sum_all e^s)`` is divided by ``B`` (upstream scale, pitfall 11).

    Args:
        z1: ``[B, d]`` L2-normalised view-1 embeddings.
        z2: ``[B, d]`` L2-normalised view-2 embeddings.
        zeta: similarity threshold (0.6 in C3's CIFAR-10 run).
    """
    b = z1.shape[0]
    z = torch.cat([z1, z2])
    s = z @ z.T
    idx = torch.arange(2 * b, device=z.device)
    pos = s > zeta
    pos[idx, idx] = True
    pos[idx, (idx + b) % (2 * b)] = True
    log_pos = torch.logsumexp(s.masked_fill(~pos, float("-inf")), dim=1)
    return (torch.logsumexp(s, dim=1) - log_pos).sum() / b


def evidence_tanh(s: torch.Tensor, tau: float = 0.1) -> torch.Tensor:
    """Evidence ``exp(tanh(s) / tau)``, elementwise; spans ~5e-4 .. 2e3 for tau 0.1.

    docs/specs/uldc.md §4.3c.
    """
    return torch.exp(torch.tanh(s) / tau)


def evidence_relu(s: torch.Tensor) -> torch.Tensor:
    """Evidence ``max(s, 0)`` (docs/specs/uldc.md §4.3c), elementwise."""
    return F.relu(s)


def uncertainty(alpha12: torch.Tensor, alpha21: torch.Tensor) -> torch.Tensor:
    """Subjective-logic uncertainty per anchor, the ``B`` columns as classes.

    docs/specs/uldc.md §4.3d.

    Args:
        alpha12: ``[B, B]`` Dirichlet parameters of view-1 anchors.
        alpha21: ``[B, B]`` Dirichlet parameters of view-2 anchors.

    Returns:
        ``[B]``: ``u_i = (B / sum_j alpha12_ij + B / sum_j alpha21_ij) / 2`` in ``(0, 1]``.
    """
    n = alpha12.shape[1]
    return 0.5 * (n / alpha12.sum(1) + n / alpha21.sum(1))


def dirichlet_kl_uniform(alpha: torch.Tensor) -> torch.Tensor:
    """``KL(Dir(alpha) || Dir(1, ..., 1))`` per row (docs/specs/uldc.md §4.3f).

    Args:
        alpha: ``[B, C]`` Dirichlet parameters (> 0).

    Returns:
        ``[B]``: ``lnG(sum a) - sum lnG(a_j) - lnG(C) + sum (a_j - 1)(psi(a_j) - psi(sum a))``.
    """
    total = alpha.sum(1, keepdim=True)
    n = torch.tensor(float(alpha.shape[1]), dtype=alpha.dtype, device=alpha.device)
    ln_norm = torch.lgamma(total).squeeze(1) - torch.lgamma(alpha).sum(1) - torch.lgamma(n)
    digamma_term = ((alpha - 1.0) * (torch.digamma(alpha) - torch.digamma(total))).sum(1)
    return ln_norm + digamma_term


def evidential_row_loss(
    alpha: torch.Tensor, y: torch.Tensor, lambda_kl: float = 0.1
) -> torch.Tensor:
    """Evidential (Dirichlet MSE) loss per anchor row (docs/specs/uldc.md §4.3f, after DECL).

    ``sum_j (y_j - p_j)^2 + sum_j p_j (1 - p_j) / (A + 1) + lambda_kl KL(Dir(a~) || Dir(1))`` with
    ``A = sum_j alpha_j``, ``p = alpha / A`` and ``a~ = y + (1 - y) alpha`` (evidence on the
    indicated partners is removed before the KL, so only evidence on non-partners is penalised).

    Args:
        alpha: ``[B, C]`` Dirichlet parameters.
        y: ``[B, C]`` 0/1 targets (float).
        lambda_kl: weight of the KL regulariser (0.1 upstream).

    Returns:
        ``[B]`` non-negative losses.
    """
    total = alpha.sum(1, keepdim=True)
    p = alpha / total
    err = ((y - p) ** 2).sum(1)
    var = (p * (1.0 - p) / (total + 1.0)).sum(1)
    alpha_tilde = y + (1.0 - y) * alpha
    return err + var + lambda_kl * dirichlet_kl_uniform(alpha_tilde)


def evidential_loss(
    s: torch.Tensor,
    y: torch.Tensor,
    tau: float = 0.1,
    lambda_kl: float = 0.1,
    weights: tuple[float, float] = (0.5, 0.5),
) -> torch.Tensor:
    """``L_evi``: tanh and ReLU evidence, both view directions, the same ``Y``.

    docs/specs/uldc.md §4.3f.

    Args:
        s: ``[B, B]`` cross-view cosines ``S_ij = cos(z1_i, z2_j)``; gradient flows through it
            unless the caller detached it (the faithful-to-upstream mode).
        y: ``[B, B]`` partner indicator of the view-1 anchors (used for both directions, as
            upstream does).
        tau: evidence temperature ``tau_e``.
        lambda_kl: KL weight inside each row loss.
        weights: weights of the tanh and of the ReLU variant (0.5 and 0.5 upstream).
    """
    total = s.new_zeros(())
    for w, evidence in zip(weights, (evidence_tanh(s, tau), evidence_relu(s)), strict=True):
        a12, a21 = evidence + 1.0, evidence.T + 1.0
        pair = evidential_row_loss(a12, y, lambda_kl).mean()
        pair = pair + evidential_row_loss(a21, y, lambda_kl).mean()
        total = total + w * pair
    return total


def row_normalise(y: torch.Tensor) -> torch.Tensor:
    """``Q = Y / Y.sum(1)`` along each row, so every row sums to 1 (pitfall 4 fixed)."""
    return y / y.sum(1, keepdim=True).clamp_min(1e-12)


def sdm_loss(
    z1: torch.Tensor, z2: torch.Tensor, y: torch.Tensor, kappa: float = 1.0, eps: float = 1e-8
) -> torch.Tensor:
    """Similarity-distribution calibration ``L_SDC`` (docs/specs/uldc.md §4.3g, after IRRA's SDM).

    ``P12_i = softmax_j(kappa cos(z1_i, z2_j))``, ``P21_i = softmax_j(kappa cos(z2_i, z1_j))``,
    ``Q`` the row-normalised indicator; ``mean_i KL(P12_i || Q_i) + mean_i KL(P21_i || Q_i)``
    with ``ln(Q + eps)``.

    Args:
        z1: ``[B, d]`` L2-normalised view-1 embeddings.
        z2: ``[B, d]`` L2-normalised view-2 embeddings.
        y: ``[B, B]`` 0/1 partner indicator.
        kappa: logit scale.
        eps: smoothing inside the logarithm of ``Q``.
    """
    log_q = torch.log(row_normalise(y) + eps)
    s = z1 @ z2.T
    total = s.new_zeros(())
    for logits in (kappa * s, kappa * s.T):
        log_p = F.log_softmax(logits, dim=1)
        total = total + (log_p.exp() * (log_p - log_q)).sum(1).mean()
    return total
