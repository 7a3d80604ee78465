"""Contrastive Clustering network: backbone + instance head + cluster head (CC, AAAI 2021, Fig. 2).

Instance projector ``Linear(d, h) - ReLU - Linear(h, m)`` with L2-normalised output; cluster
projector ``Linear(d, h) - ReLU - Linear(h, K) - softmax``. Backbones: an MLP (digits), a 3-conv
CNN (USPS / MNIST / Fashion-MNIST) and the ResNet of :mod:`dcflow.models.cc_resnet` (CIFAR-10,
ImageNet-Dogs).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from dcflow.errors import ConfigError
from dcflow.models.cc_resnet import ResNet

Arch = Literal["mlp", "cnn", "resnet18", "resnet34"]


class MLPBackbone(nn.Module):
    """Flatten, then ``Linear - BatchNorm - ReLU`` per hidden width; output ``[B, widths[-1]]``."""

    def __init__(self, in_dim: int, widths: list[int]) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        for w in widths:
            layers += [nn.Linear(in_dim, w), nn.BatchNorm1d(w), nn.ReLU(inplace=True)]
            in_dim = w
        self.net = nn.Sequential(*layers)
        self.out_dim = in_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W]`` -> ``[B, out_dim]``."""
        return self.net(x)


class ConvBackbone(nn.Module):
    """``Conv3x3 - BN - ReLU`` blocks (2x2 max-pool after all but the last), then a dense layer.

    ``widths[:-1]`` are the convolution channels and ``widths[-1]`` the output size of the final
    ``Linear - BN - ReLU`` on the flattened map (kept spatial: digit identity depends on layout,
    which global average pooling would discard).

    Args:
        image_shape: ``(C, H, W)`` of the input.
        widths: at least two sizes, e.g. ``[32, 64, 128, 256]``.
    """

    def __init__(self, image_shape: tuple[int, int, int], widths: list[int]) -> None:
        super().__init__()
        if len(widths) < 2:
            raise ConfigError("model.widths for arch cnn needs conv channels plus an output size")
        c, h, w = image_shape
        layers: list[nn.Module] = []
        convs = widths[:-1]
        for i, width in enumerate(convs):
            layers += [nn.Conv2d(c, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width)]
            layers.append(nn.ReLU(inplace=True))
            if i < len(convs) - 1:
                layers.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
            c = width
        dense = [nn.Linear(c * h * w, widths[-1]), nn.BatchNorm1d(widths[-1]), nn.ReLU(True)]
        self.net = nn.Sequential(*layers, nn.Flatten(), *dense)
        self.out_dim = widths[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W]`` -> ``[B, widths[-1]]``."""
        return self.net(x)


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
        widths: hidden widths (MLP) or channel widths (CNN); ignored by ResNets.
        instance_dim: instance embedding size.
        head_hidden: projector hidden width.
        stem: ResNet stem.
    """
    c, h, w = image_shape
    backbone: nn.Module
    if arch == "mlp":
        backbone = MLPBackbone(c * h * w, widths)
    elif arch == "cnn":
        backbone = ConvBackbone(image_shape, widths)
    else:
        backbone = ResNet(arch, c, stem)
    return CCNetwork(backbone, instance_dim, head_hidden, n_clusters)
