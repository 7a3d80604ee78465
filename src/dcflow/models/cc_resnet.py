"""ResNet-18/34 feature extractor (He et al., CVPR 2016) in the torchvision layout used by CC/C3.

Contrastive Clustering and C3 use torchvision's ResNet-34 without its classifier (512-d features)
on 224-px inputs; ``stem="cifar"`` swaps the 7x7/stride-2 stem and max-pool for a 3x3/stride-1
convolution for native 32-px inputs. Written from the paper's architecture, not copied.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from dcflow.models.resnet import BasicBlock

DEPTHS = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3)}


class ResNet(nn.Module):
    """ResNet trunk with global average pooling; ``forward`` gives ``[B, 512]`` features.

    Args:
        depth: ``resnet18`` or ``resnet34``.
        in_channels: image channels (3 for RGB, 1 for grayscale).
        stem: ``imagenet`` (7x7 stride 2 + max-pool, the CC setting) or ``cifar`` (3x3 stride 1).
    """

    out_dim = 512

    def __init__(
        self,
        depth: Literal["resnet18", "resnet34"] = "resnet34",
        in_channels: int = 3,
        stem: Literal["imagenet", "cifar"] = "imagenet",
    ) -> None:
        super().__init__()
        if stem == "imagenet":
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False),
                nn.BatchNorm2d(64),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, 2, 1),
            )
        else:
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False),
                nn.BatchNorm2d(64),
                nn.ReLU(inplace=True),
            )
        layers: list[nn.Module] = []
        c_in = 64
        for i, (blocks, width) in enumerate(zip(DEPTHS[depth], (64, 128, 256, 512), strict=True)):
            for j in range(blocks):
                layers.append(BasicBlock(c_in, width, 2 if (j == 0 and i > 0) else 1))
                c_in = width
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W]`` -> ``[B, 512]``."""
        return self.pool(self.layers(self.stem(x))).flatten(1)
