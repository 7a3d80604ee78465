"""Small convolutional backbone for 8x8 / 16x16 / 28x28 images (the spec's CPU-scale network).

Three ``conv3x3 - BN - ReLU`` blocks (default widths 16-32-64) followed by global average pooling.
A 2x2 max-pool follows block 2 for inputs up to 8x8 pixels, and blocks 1 and 2 for larger inputs,
so 8x8 -> 4x4 and 16x16 -> 4x4, 28x28 -> 7x7 feature maps (spec ``ruc.md`` section 5).
"""

from __future__ import annotations

import torch
from torch import nn


def _block(c_in: int, c_out: int) -> list[nn.Module]:
    return [
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    ]


class SmallConvNet(nn.Module):
    """Conv backbone mapping ``[B, C, H, W]`` to features ``[B, widths[-1]]``.

    Args:
        in_channels: image channels C.
        image_size: image height H (decides where to pool).
        widths: channel widths of the conv blocks.
    """

    def __init__(self, in_channels: int, image_size: int, widths: list[int]) -> None:
        super().__init__()
        pool_after = {1} if image_size <= 8 else {0, 1}
        layers: list[nn.Module] = []
        c_in = in_channels
        for i, width in enumerate(widths):
            layers += _block(c_in, width)
            if i in pool_after:
                layers.append(nn.MaxPool2d(2))
            c_in = width
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.layers = nn.Sequential(*layers)
        self.out_dim = widths[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features ``[B, out_dim]``."""
        return self.layers(x)
