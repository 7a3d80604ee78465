"""Contrastive Clustering network: backbone + instance head + cluster head (CC, AAAI 2021, Fig. 2).

Instance projector ``Linear(d, h) - ReLU - Linear(h, m)`` with L2-normalised output; cluster
projector ``Linear(d, h) - ReLU - Linear(h, K) - softmax``. Backbones from
:func:`~dcflow.models.backbones.build_backbone`: an MLP (digits), a 3-conv CNN with a dense layer
(USPS / MNIST / Fashion-MNIST) and ResNet-34 (CIFAR-10, ImageNet-Dogs), in CC's parameter names.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from dcflow.models.backbones import build_backbone

Arch = Literal["mlp", "cnn", "resnet18", "resnet34"]


def _mlp_head(d_in: int, hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, d_out))


class CCNetwork(nn.Module):
    """Backbone with the CC instance and cluster projectors.

    Args:
        backbone: module mapping ``[B, C, H, W]`` to ``[B, backbone.out_dim]``.
        instance_dim: size ``m`` of the instance embedding (128 in CC).
        head_hidden: hidden width ``h`` of both projectors (512 in CC).
        n_clusters: number of clusters ``K``.
    """

    def __init__(
        self, backbone: nn.Module, instance_dim: int, head_hidden: int, n_clusters: int
    ) -> None:
        super().__init__()
        d = int(backbone.out_dim)  # type: ignore[arg-type]
        self.backbone = backbone
        self.instance_head = _mlp_head(d, head_hidden, instance_dim)
        self.cluster_head = _mlp_head(d, head_hidden, n_clusters)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``z`` (``[B, m]``, unit rows) and ``p`` (``[B, K]``, softmax rows)."""
        h = self.backbone(x)
        return self.embed_features(h), self.cluster_features(h)

    def embed_features(self, h: torch.Tensor) -> torch.Tensor:
        """Instance embedding ``[B, m]`` (L2-normalised) from backbone features ``h``."""
        return F.normalize(self.instance_head(h), dim=1)

    def cluster_features(self, h: torch.Tensor) -> torch.Tensor:
        """Cluster probabilities ``[B, K]`` from backbone features ``h``."""
        return torch.softmax(self.cluster_head(h), dim=1)


def build_cc_network(
    arch: Arch,
    image_shape: tuple[int, int, int],
    n_clusters: int,
    widths: list[int],
    instance_dim: int,
    head_hidden: int,
    stem: Literal["imagenet", "cifar"] = "imagenet",
) -> CCNetwork:
    """Build the CC network for images of ``image_shape`` = ``(C, H, W)`` (after resizing).

    Args:
        arch: backbone family.
        image_shape: input shape the backbone sees.
        n_clusters: ``K``.
        widths: hidden widths (MLP), or conv channels plus the dense layer's size (CNN);
            ignored by ResNets.
        instance_dim: instance embedding size.
        head_hidden: projector hidden width.
        stem: ResNet stem.

    Raises:
        ConfigError: ``cnn`` with fewer than two widths.
    """
    backbone = build_backbone(
        arch,
        image_shape,
        widths=widths,  # cnn: max-pool after every conv but the last, then a dense layer
        head="dense",
        stack="net",
        flatten_layer=True,
        stem=stem,
        block_layout="flat",
    )
    return CCNetwork(backbone, instance_dim, head_hidden, n_clusters)
