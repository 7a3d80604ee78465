"""One backbone factory for every method: an MLP, a small CNN and ResNet-18 / ResNet-34.

:func:`build_backbone` returns a module mapping images ``[B, C, H, W]`` to features
``[B, out_dim]`` (every backbone has an ``out_dim`` attribute). The methods differ only in options:

========================  ==================================================================
caller                    backbone
========================  ==================================================================
SCAN, RUC (small_cnn)     ``cnn``: 3x3 conv-BN-ReLU, stride 1, 2x2 max-pool after block 1
                          (8x8 inputs) or blocks 0 and 1 (larger), GAP; ``stack="layers"``
SCAN, RUC, Self-CC        ``resnet18``, ``cifar`` / ``stl`` stem, ``block_layout="stages"``
CC, ULDC                  ``mlp`` with ``flatten_layer``; ``cnn`` with max-pool after every conv
                          but the last and a dense head; ``resnet18`` / ``resnet34``,
                          ``imagenet`` / ``cifar`` stem, ``block_layout="flat"``
ProPos, HaDis             ``mlp``; ``cnn`` with stride-2 convolutions, no max-pool, GAP;
                          ``resnet18``, ``cifar`` stem, ``block_layout="flat"``
========================  ==================================================================

The CPU-scale MLP and CNNs are the specs' suggestions, not from the papers
(``docs/specs/ruc.md``, ``uldc.md`` and ``hadis.md``, section 5); the ResNets are He et al., "Deep
Residual Learning for Image Recognition", CVPR 2016, built from :mod:`dcflow.models.resnet`.
``stack``, ``flatten_layer`` and ``block_layout`` change parameter names only: each method family's
cached weights load by key, so its names stay.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from dcflow.errors import ConfigError
from dcflow.models.resnet import DEPTHS, Stem, make_stages, make_stem

BackboneKind = Literal["mlp", "cnn", "resnet18", "resnet34"]
Head = Literal["gap", "dense"]
Stack = Literal["net", "layers"]
BlockLayout = Literal["stages", "flat"]


class Backbone(nn.Module):
    """Base of the backbones: images ``[B, C, H, W]`` -> features ``[B, out_dim]``."""

    out_dim: int


def _linear_bn_relu(d_in: int, d_out: int) -> list[nn.Module]:
    return [nn.Linear(d_in, d_out), nn.BatchNorm1d(d_out), nn.ReLU(inplace=True)]


class MLP(Backbone):
    """Flatten, then ``Linear - BN - ReLU`` per width; ``[B, C, H, W]`` -> ``[B, widths[-1]]``.

    Args:
        in_dim: ``C * H * W``.
        widths: hidden widths; the last is the feature dim.
        flatten_layer: keep an ``nn.Flatten`` as layer 0 of ``net`` (CC's parameter names
            ``net.1.*``, ``net.2.*``, ...); without it the first linear layer is ``net.0``.
    """

    def __init__(self, in_dim: int, widths: Sequence[int], flatten_layer: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()] if flatten_layer else []
        for width in widths:
            layers += _linear_bn_relu(in_dim, width)
            in_dim = width
        self.net = nn.Sequential(*layers)
        self.out_dim = in_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W]`` -> ``[B, out_dim]``."""
        return self.net(x.flatten(1))


class ConvNet(Backbone):
    """``Conv3x3 - BN - ReLU`` blocks (optional 2x2 max-pool after some), then GAP or a dense layer.

    Args:
        image_shape: ``(C, H, W)`` of the input.
        channels: channels of the conv blocks.
        stride: stride of every convolution (1, or 2 to downsample without pooling).
        pool_after: indices of the blocks followed by a 2x2 max-pool.
        dense: ``None`` for global average pooling to ``channels[-1]`` features; else the size of
            a ``Linear - BN - ReLU`` on the flattened map (kept spatial: digit identity depends on
            layout, which average pooling discards).
        stack: attribute (and parameter-name prefix) of the layer sequence.
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        channels: Sequence[int],
        stride: int = 1,
        pool_after: Collection[int] = (),
        dense: int | None = None,
        stack: Stack = "net",
    ) -> None:
        super().__init__()
        c, h, w = image_shape
        layers: list[nn.Module] = []
        for i, width in enumerate(channels):
            layers += [nn.Conv2d(c, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width)]
            layers.append(nn.ReLU(inplace=True))
            h, w = (h - 1) // stride + 1, (w - 1) // stride + 1
            if i in pool_after:
                layers.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
            c = width
        if dense is None:
            layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        else:
            layers += [nn.Flatten(), *_linear_bn_relu(c * h * w, dense)]
        self.stack = stack
        self.add_module(stack, nn.Sequential(*layers))
        self.out_dim = c if dense is None else dense

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W]`` -> ``[B, out_dim]``."""
        return self.get_submodule(self.stack)(x)


class ResNet(Backbone):
    """ResNet trunk with global average pooling, ``[B, C, H, W]`` -> ``[B, out_dim]``.

    Args:
        depth: ``resnet18`` (2-2-2-2 blocks) or ``resnet34`` (3-4-6-3).
        in_channels: image channels (3 for RGB, 1 for grayscale).
        stem: ``cifar``, ``stl`` or ``imagenet`` (see :mod:`dcflow.models.resnet`).
        width: channels of the first stage (64 in the paper); ``out_dim = 8 * width``.
        block_layout: parameter names only: ``stages`` nests the blocks per stage
            (``stages.<stage>.<block>.*``, SCAN's), ``flat`` lists them (``layers.<block>.*``,
            CC's and ProPos's).
    """

    def __init__(
        self,
        depth: Literal["resnet18", "resnet34"] = "resnet18",
        in_channels: int = 3,
        stem: Stem = "cifar",
        width: int = 64,
        block_layout: BlockLayout = "stages",
    ) -> None:
        super().__init__()
        self.stem = make_stem(stem, in_channels, width)
        stages = make_stages(DEPTHS[depth], width)
        if block_layout == "stages":
            self.trunk_name, trunk = "stages", nn.Sequential(*stages)
        else:
            self.trunk_name, trunk = "layers", nn.Sequential(*[b for s in stages for b in s])
        self.add_module(self.trunk_name, trunk)
        self.out_dim = width * 2 ** (len(stages) - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features ``[B, out_dim]`` after global average pooling."""
        out = self.get_submodule(self.trunk_name)(self.stem(x))
        return torch.flatten(F.adaptive_avg_pool2d(out, 1), 1)


def build_backbone(
    kind: BackboneKind,
    image_shape: tuple[int, int, int],
    *,
    widths: Sequence[int] = (),
    stride: int = 1,
    pool_after: Collection[int] | None = None,
    head: Head = "gap",
    stack: Stack = "net",
    flatten_layer: bool = False,
    stem: Stem = "cifar",
    width: int = 64,
    block_layout: BlockLayout = "stages",
) -> Backbone:
    """The backbone ``kind`` for images of ``image_shape`` ``(C, H, W)``; it has ``out_dim``.

    Args:
        kind: ``mlp``, ``cnn``, ``resnet18`` or ``resnet34``.
        image_shape: input shape the backbone sees.
        widths: ``mlp``: hidden widths. ``cnn``: conv channels, and with ``head="dense"`` the
            last entry is the dense layer's size. Ignored by the ResNets.
        stride: ``cnn``: stride of every convolution.
        pool_after: ``cnn``: blocks followed by a 2x2 max-pool; ``None`` = every block but the
            last.
        head: ``cnn``: ``gap`` (global average pooling) or ``dense`` (flatten + Linear-BN-ReLU).
        stack: ``cnn``: name of the layer sequence (``net`` or ``layers``).
        flatten_layer: ``mlp``: keep an ``nn.Flatten`` as layer 0 (parameter names only).
        stem: ResNets: ``cifar``, ``stl`` or ``imagenet``.
        width: ResNets: first-stage channels (64 in He et al.).
        block_layout: ResNets: ``stages`` or ``flat`` (parameter names only).

    Raises:
        ConfigError: a ``cnn`` with a dense head given fewer than two widths.
    """
    c, h, w = image_shape
    if kind == "mlp":
        return MLP(c * h * w, widths, flatten_layer)
    if kind == "cnn":
        return _conv_net(image_shape, list(widths), stride, pool_after, head, stack)
    return ResNet(kind, c, stem, width, block_layout)


def _conv_net(
    image_shape: tuple[int, int, int],
    widths: list[int],
    stride: int,
    pool_after: Collection[int] | None,
    head: Head,
    stack: Stack,
) -> ConvNet:
    """:class:`ConvNet` from the factory's options (``widths[-1]`` is the dense size if any)."""
    channels, dense = widths, None
    if head == "dense":
        if len(widths) < 2:
            raise ConfigError("model.widths for arch cnn needs conv channels plus an output size")
        channels, dense = widths[:-1], widths[-1]
    pools = range(len(channels) - 1) if pool_after is None else pool_after
    return ConvNet(image_shape, channels, stride, pools, dense, stack)
