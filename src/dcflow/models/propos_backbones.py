"""Small backbones and MLP heads for ProPos / HaDis at CPU scale.

The spec's CPU-scale suggestion (``shared/methods/hadis.md`` section 5, not from either paper):
digits 8x8 use an MLP ``64-256-256``; USPS 16x16, MNIST and Fashion-MNIST 28x28 use three conv
blocks (32/64/128 channels, stride 2) and global average pooling to 128 features. Heads follow
ProPos Sec. 4 / BYOL: ``Linear-BN-ReLU-Linear`` for the projector and the predictor.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from dcflow.errors import ConfigError

BackboneName = Literal["auto", "mlp", "cnn", "resnet18"]


class MLPBackbone(nn.Module):
    """Flatten ``[B, C, H, W]`` and apply ``Linear-BN-ReLU`` blocks.

    Args:
        in_dim: ``C * H * W``.
        hidden: widths of the blocks; the last is the feature dim.
    """

    def __init__(self, in_dim: int, hidden: list[int]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for width in hidden:
            layers += [nn.Linear(in_dim, width), nn.BatchNorm1d(width), nn.ReLU(inplace=True)]
            in_dim = width
        self.net = nn.Sequential(*layers)
        self.out_dim = in_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W]`` -> ``[B, out_dim]``."""
        return self.net(x.flatten(1))


class SmallCNN(nn.Module):
    """Conv(3x3, stride 2)-BN-ReLU blocks, then global average pooling.

    Args:
        in_channels: image channels.
        channels: block widths (the last is the feature dim).
    """

    def __init__(self, in_channels: int, channels: list[int]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for width in channels:
            layers += [
                nn.Conv2d(in_channels, width, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
            in_channels = width
        self.net = nn.Sequential(*layers)
        self.out_dim = in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W]`` -> ``[B, out_dim]``."""
        return self.net(x).mean(dim=(2, 3))


def mlp_head(in_dim: int, hidden: int, out_dim: int, init_std: float | None = None) -> nn.Module:
    """``Linear(in, hidden)-BN-ReLU-Linear(hidden, out)`` (projector / predictor).

    Args:
        in_dim: input width.
        hidden: hidden width (4096 in the paper).
        out_dim: output width ``d`` (256 in the paper).
        init_std: when given, linear weights ~ N(0, init_std^2) and biases 0 (the predictor's
            upstream initialisation, std 0.01).
    """
    head = nn.Sequential(
        nn.Linear(in_dim, hidden),
        nn.BatchNorm1d(hidden),
        nn.ReLU(inplace=True),
        nn.Linear(hidden, out_dim),
    )
    if init_std is not None:
        for m in head.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=init_std)
                nn.init.zeros_(m.bias)
    return head


def resolve_backbone(name: BackboneName, image_shape: tuple[int, int, int]) -> str:
    """``auto`` picks ``mlp`` for images of at most 8x8 pixels, ``cnn`` otherwise."""
    if name != "auto":
        return name
    return "mlp" if image_shape[1] * image_shape[2] <= 64 else "cnn"


def build_backbone(
    name: BackboneName, image_shape: tuple[int, int, int], widths: list[int]
) -> nn.Module:
    """The backbone for ``image_shape`` ``(C, H, W)``; it has an ``out_dim`` attribute.

    Raises:
        ConfigError: ``resnet18`` on images smaller than 16x16.
    """
    from dcflow.models.cc_resnet import ResNet

    c, h, w = image_shape
    kind = resolve_backbone(name, image_shape)
    if kind == "mlp":
        return MLPBackbone(c * h * w, widths)
    if kind == "cnn":
        return SmallCNN(c, widths)
    if min(h, w) < 16:
        raise ConfigError(f"model.backbone=resnet18 needs images of 16x16 or more, got {h}x{w}")
    return ResNet("resnet18", c, stem="cifar")  # the ProPos/HaDis CIFAR-stem ResNet-18
