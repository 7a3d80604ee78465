"""ResNet-18 with the CIFAR stem (3x3 stride-1 first conv, no max-pool), 512-d features.

K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for Image Recognition", CVPR 2016, with the
small-image stem used by ProPos / HaDis for CIFAR-10/20 and STL-10 (``shared/methods/hadis.md``
section 4.1). Input ``[B, C, H, W]``, output ``[B, 512]`` after global average pooling.
"""

from __future__ import annotations

import torch
from torch import nn

from dcflow.models.resnet import BasicBlock


class CifarResNet18(nn.Module):
    """ResNet-18 (2-2-2-2 basic blocks, widths 64-128-256-512) with a CIFAR stem.

    Args:
        in_channels: image channels (3 for CIFAR / STL, 1 for grey images).
    """

    out_dim = 512

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
        )
        layers: list[nn.Module] = []
        in_ch = 64
        for width, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers += [BasicBlock(in_ch, width, stride), BasicBlock(width, width, 1)]
            in_ch = width
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W]`` -> ``[B, 512]``."""
        return self.layers(self.stem(x)).mean(dim=(2, 3))
