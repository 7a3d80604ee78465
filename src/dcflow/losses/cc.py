"""Contrastive Clustering losses (Li et al., "Contrastive Clustering", AAAI 2021, Sec. 3.2-3.3).

Instance-level contrast (Eq. 2-3): the two augmented views of a batch give ``2B`` embeddings; each
row's positive is the other view of the same image, the other ``2B - 2`` rows are negatives.
Cluster-level contrast (Eq. 4-6): each of the ``K`` columns of the soft assignment matrix (length
``B``) is a cluster representation; column ``k`` of view 1 is positive with column ``k`` of view 2.
Cluster entropy (Eq. 7): ``ln K - H(p_bar)`` per view, with ``p_bar`` the normalised column sums,
keeps all clusters in use.

Under data-parallel training both losses see the global batch: instance rows are contrasted with
every process's rows, and the cluster columns and ``p_bar`` are built from the gathered
assignments (:func:`dcflow.train.distributed.gather_batch`), so ``N`` processes compute the
one-process loss of the same global batch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from dcflow.losses.ntxent import ntxent_loss
from dcflow.train.distributed import gather_batch


def instance_contrastive_loss(
    z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5
) -> torch.Tensor:
    """CC instance loss (Eq. 3): NT-Xent over the ``2B`` instance embeddings.

    Args:
        z1: ``[B, d]`` instance embeddings of view 1.
        z2: ``[B, d]`` instance embeddings of view 2.
        temperature: ``tau_I`` (0.5 in CC).
    """
    return ntxent_loss(F.normalize(z1, dim=1), F.normalize(z2, dim=1), temperature)


def cluster_entropy(p: torch.Tensor) -> torch.Tensor:
    """``ln K - H(p_bar)`` (Eq. 7, one view): 0 for balanced clusters, ``ln K`` for one cluster.

    Args:
        p: ``[B, K]`` soft assignments (rows sum to 1).
    """
    p_bar = p.sum(0) / p.sum()
    return math.log(p.shape[1]) + (p_bar * torch.log(p_bar.clamp_min(1e-12))).sum()


def cluster_contrastive_loss(
    p1: torch.Tensor, p2: torch.Tensor, temperature: float = 1.0, entropy_weight: float = 1.0
) -> torch.Tensor:
    """CC cluster loss (Eq. 6-7): NT-Xent over the ``2K`` cluster columns plus cluster entropy.

    Args:
        p1: ``[B, K]`` softmax cluster assignments of view 1.
        p2: ``[B, K]`` softmax cluster assignments of view 2.
        temperature: ``tau_C`` (1.0 in CC).
        entropy_weight: weight of the two entropy terms (1 in CC).

    Returns:
        Scalar ``NT-Xent(p1.T, p2.T) + w * (entropy(p1) + entropy(p2))``.
    """
    p1, p2 = gather_batch(p1)[0], gather_batch(p2)[0]
    contrast = ntxent_loss(
        F.normalize(p1.T, dim=1), F.normalize(p2.T, dim=1), temperature, gather=False
    )
    return contrast + entropy_weight * (cluster_entropy(p1) + cluster_entropy(p2))
