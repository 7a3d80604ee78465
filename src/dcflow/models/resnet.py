"""ResNet building blocks: basic block, stems and stages (the trunk is ``backbones.ResNet``).

He et al., "Deep Residual Learning for Image Recognition", CVPR 2016: basic blocks (two 3x3
conv-BN layers, identity or 1x1-projection shortcut), four stages of widths 1x, 2x, 4x, 8x the first
stage's, stride 2 at the start of stages 2-4; the trunk ends in global average pooling,
``[B, C, H, W]`` -> ``[B, 8 * width]`` (512 at the paper's width 64).

Stems:

* ``imagenet``: the paper's 7x7 stride-2 convolution and 3x3 stride-2 max-pool (CC / C3 at 224 px).
* ``cifar``: SCAN / SimCLR's 3x3 stride-1 convolution and no max-pool, for native 32-px inputs
  (SCAN, RUC, Self-CC, ProPos / HaDis, CC with ``model.stem: cifar``).
* ``stl``: the ``cifar`` stem plus a 2x2 stride-2 max-pool (SCAN's STL-10 network).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Stem = Literal["cifar", "stl", "imagenet"]
DEPTHS = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3)}


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity (or 1x1 projection) shortcut (He et al., Fig. 2).

    Args:
        c_in: input channels.
        c_out: output channels.
        stride: stride of the first convolution and of the projection.
    """

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


def make_stem(stem: Stem, in_channels: int, width: int) -> nn.Sequential:
    """``conv - BN - ReLU`` (plus a max-pool for ``stl`` and ``imagenet``); see the module doc."""
    if stem == "imagenet":
        return nn.Sequential(
            nn.Conv2d(in_channels, width, 7, 2, 3, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
        )
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, width, 3, 1, 1, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(inplace=True),
    ]
    if stem == "stl":
        layers.append(nn.MaxPool2d(2, 2))
    return nn.Sequential(*layers)


def make_stages(depths: tuple[int, ...], width: int) -> list[nn.Sequential]:
    """One ``nn.Sequential`` of basic blocks per stage, ``width * 2**i`` channels in stage ``i``."""
    stages: list[nn.Sequential] = []
    c_in = width
    for i, blocks in enumerate(depths):
        c_out = width * 2**i
        stage = [BasicBlock(c_in, c_out, 2 if i > 0 else 1)]
        stage += [BasicBlock(c_out, c_out, 1) for _ in range(blocks - 1)]
        stages.append(nn.Sequential(*stage))
        c_in = c_out
    return stages
