"""Self-CC networks: the clustering module (encoder + learnable centres) and RTDS classifiers.

Wang et al., "Self-Correcting Clustering", IEEE TKDE 2025; docs/specs/self-cc.md §4.1, §4.4.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from dcflow.data.bank import Images
from dcflow.losses.self_cc import log_membership
from dcflow.models.autoencoder import embed
from dcflow.models.backbones import build_backbone
from dcflow.models.cluster import ClusterModel


def mlp_classifier(dims: list[int]) -> nn.Sequential:
    """MLP ``D -> h1 -> ... -> K`` with ReLU between layers (USPS/MNIST RTDS classifiers)."""
    layers: list[nn.Module] = []
    for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
        layers.append(nn.Linear(d_in, d_out))
        if i < len(dims) - 2:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def image_classifier(
    image_shape: tuple[int, ...],
    hidden: list[int],
    k: int,
    stem: Literal["cifar", "stl"],
    width: int,
) -> nn.Sequential:
    """ResNet-18 on flattened images ``[B, C*H*W]`` with an MLP head (STL/CIFAR RTDS nets)."""
    c, h, w = image_shape
    backbone = build_backbone("resnet18", (c, h, w), stem=stem, width=width, block_layout="stages")
    return nn.Sequential(
        nn.Unflatten(1, tuple(image_shape)),
        backbone,
        mlp_classifier([backbone.out_dim, *hidden, k]),
    )


class ContrastiveFE(nn.Module):
    """Flattened images -> L2-normalised backbone features (Self-CC's STL/CIFAR FE).

    docs/specs/self-cc.md §4.1.

    Args:
        model: a SimCLR-pretrained :class:`~dcflow.models.cluster.ClusterModel` (its input
            normalisation travels with it).
        image_shape: ``(C, H, W)``.
    """

    def __init__(self, model: ClusterModel, image_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.model = model
        self.image_shape = tuple(image_shape)
        self.out_dim = model.feat_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, d]`` unit-norm features of ``x`` ``[B, C*H*W]``."""
        return F.normalize(self.model.features(x.view(-1, *self.image_shape)), dim=1)


class ClusteringModule(nn.Module):
    """Feature extractor with learnable centres; fuzzy memberships in log space.

    Args:
        encoder: maps ``[B, D]`` inputs to ``[B, d]`` codes.
        centers: ``[K, d]`` initial centres (rows are centres; pitfall 4 asserts the shape).
        m: fuzzifier.
    """

    def __init__(self, encoder: nn.Module, centers: torch.Tensor, m: float) -> None:
        super().__init__()
        if centers.dim() != 2:
            raise ValueError(f"centers must be [K, d], got {list(centers.shape)}")
        self.encoder = encoder
        self.centers = nn.Parameter(centers.detach().clone().float())
        self.m = m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, K]`` log-memberships of ``x`` ``[B, D]``."""
        return log_membership(self.encoder(x), self.centers, self.m)

    @torch.no_grad()
    def infer(self, x: Images, batch_size: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
        """Codes ``[N, d]`` and memberships ``[N, K]`` of ``x`` ``[N, D]`` in eval mode."""
        z = embed(self.encoder, x, batch_size)
        return z, log_membership(z, self.centers, self.m).exp()
