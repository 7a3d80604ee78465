"""ResNet-18 for small images, as used by SimCLR/SCAN/RUC on CIFAR and STL.

He et al., "Deep Residual Learning for Image Recognition", CVPR 2016, with the CIFAR stem of the
SCAN code base: a 3x3 stride-1 first convolution and no max-pool (``stem='cifar'``); STL-10 adds a
2x2 stride-2 max-pool after the stem (``stem='stl'``). Output: 512-d features after global average
pooling (spec ``ruc.md`` section 4.1).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity (or 1x1 projection) shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, c_in, H, W]`` -> ``[B, c_out, H/stride, W/stride]``."""
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18 backbone ``[B, C, H, W]`` -> ``[B, 512]``.

    Args:
        in_channels: image channels C.
        stem: ``cifar`` (3x3 stride 1, no pool) or ``stl`` (plus a 2x2 stride-2 max-pool).
        width: channels of the first stage (64 in the paper); stages use 1x, 2x, 4x, 8x.
    """

    def __init__(
        self, in_channels: int = 3, stem: Literal["cifar", "stl"] = "cifar", width: int = 64
    ) -> None:
        super().__init__()
        stem_layers: list[nn.Module] = [
            nn.Conv2d(in_channels, width, 3, 1, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        ]
        if stem == "stl":
            stem_layers.append(nn.MaxPool2d(2, 2))
        self.stem = nn.Sequential(*stem_layers)
        stages: list[nn.Module] = []
        c_in = width
        for i, mult in enumerate((1, 2, 4, 8)):
            c_out = width * mult
            stride = 1 if i == 0 else 2
            stages.append(
                nn.Sequential(BasicBlock(c_in, c_out, stride), BasicBlock(c_out, c_out, 1))
            )
            c_in = c_out
        self.stages = nn.Sequential(*stages)
        self.out_dim = c_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features ``[B, 8 * width]`` after global average pooling."""
        return torch.flatten(F.adaptive_avg_pool2d(self.stages(self.stem(x)), 1), 1)
