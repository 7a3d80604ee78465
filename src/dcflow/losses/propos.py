"""ProPos losses: positive-sampling alignment and the prototype scattering loss (PSL).

Z. Huang, J. Chen, J. Zhang, H. Shan, "Learning Representation for Clustering via Prototype
Scattering and Positive Sampling", IEEE TPAMI 2022 (arXiv 2111.11821), Sec. 3.2-3.3. Re-implemented
from docs/specs/hadis.md §4.2; no upstream code is copied.

Shapes: ``B`` batch, ``d`` embedding dim, ``K`` clusters. Under data-parallel training the
prototypes are those of the global batch (gathered with gradients), and the alignment loss, a mean
over samples, averages to the global mean over processes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dcflow.train.distributed import gather_batch, gather_constant

ABSENT_LOGIT = -10.0
"""Logit given to a cluster absent from the batch, set after dividing by tau.

docs/specs/hadis.md pitfall 6.
"""


def alignment_loss(p: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Positive-sampling alignment ``L = -2 mean_i cos(p_i, k_i)`` (ProPos Eq. 6, HaDis DSA).

    Args:
        p: ``[B, d]`` predictor outputs ``g(q + sigma eps)`` of one view (any norm).
        k: ``[B, d]`` target embeddings of the other view (treated as constants).

    Returns:
        Scalar in ``[-2, 2]``; ``-2`` when every ``p_i`` is parallel to ``k_i``. It equals the
        unit-vector MSE ``2 - 2 cos`` minus 2, so the gradient is BYOL's (docs/specs/hadis.md
        pitfall 4).
    """
    return -2.0 * F.cosine_similarity(p, k.detach(), dim=1).mean()


def batch_prototypes(
    z: torch.Tensor, labels: torch.Tensor, n_clusters: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-batch cluster prototypes ``mu_c = normalise(mean_{i: y_i = c} normalise(z_i))``.

    Args:
        z: ``[B, d]`` embeddings.
        labels: ``[B]`` int64 pseudo-labels in ``[0, K)``.
        n_clusters: ``K``.

    Returns:
        ``([K, d] prototypes with unit rows for present clusters and zero rows otherwise,
        [K] bool mask of present clusters)``.
    """
    onehot = F.one_hot(labels, n_clusters).to(z.dtype)  # [B, K]
    sums = onehot.T @ F.normalize(z, dim=1)  # [K, d]
    return F.normalize(sums, dim=1), onehot.sum(0) > 0


def prototype_scattering_loss(
    q: torch.Tensor,
    k: torch.Tensor,
    labels: torch.Tensor,
    n_clusters: int,
    temperature: float = 0.5,
    absent_logit: float | None = ABSENT_LOGIT,
) -> torch.Tensor:
    """Prototype scattering loss (ProPos Eq. 4): contrast the two views' cluster prototypes.

    ``a_c = mu_c . mu'_c / tau`` (positive), ``b_cj = mu_c . mu_j / tau`` (online vs online,
    ``j != c``); ``l_c = -a_c + log(e^{a_c} + sum_{j != c} e^{b_cj})``, averaged over the clusters
    present in the batch. Gradient flows through the online prototypes ``mu`` only.

    Args:
        q: ``[B, d]`` online projector outputs of view 1.
        k: ``[B, d]`` target embeddings of view 2 (detached here).
        labels: ``[B]`` pseudo-labels of the batch.
        n_clusters: ``K``.
        temperature: ``tau``.
        absent_logit: logit of columns whose cluster is absent (upstream ``-10``); ``None``
            drops them exactly (then absent clusters change nothing).

    Returns:
        Scalar ``>= 0``; ``ln K`` when all prototypes coincide. Under data-parallel training the
        same global value on every process (prototypes of the gathered batch).
    """
    q, labels = gather_batch(q)[0], gather_constant(labels)
    k = gather_constant(k.detach())
    mu, present = batch_prototypes(q, labels, n_clusters)
    mu_t, _ = batch_prototypes(k, labels, n_clusters)
    logits = (mu @ mu.T) / temperature  # [K, K] online vs online
    diag = torch.eye(n_clusters, dtype=torch.bool, device=q.device)
    pos = (mu * mu_t).sum(1) / temperature  # [K]
    logits = torch.where(diag, pos[:, None].expand_as(logits), logits)
    fill = float("-inf") if absent_logit is None else absent_logit
    logits = logits.masked_fill(~present[None, :], fill)
    targets = torch.arange(n_clusters, device=q.device)
    per_row = F.cross_entropy(logits[present], targets[present], reduction="none")
    return per_row.mean()
