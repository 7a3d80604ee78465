"""ProPos / HaDis backbone choice: ``auto`` resolution and the ResNet-18 size guard."""

from __future__ import annotations

import pytest
import torch

from dcflow.errors import ConfigError
from dcflow.models.backbones import MLP, ConvNet, ResNet
from dcflow.models.propos_net import propos_backbone, resolve_backbone


@pytest.mark.parametrize(
    ("shape", "kind"), [((1, 8, 8), "mlp"), ((1, 16, 16), "cnn"), ((3, 32, 32), "cnn")]
)
def test_auto_picks_the_mlp_up_to_8x8_and_the_cnn_above(
    shape: tuple[int, int, int], kind: str
) -> None:
    assert resolve_backbone("auto", shape) == kind
    assert resolve_backbone("resnet18", shape) == "resnet18"


def test_cnn_downsamples_by_stride_and_pools_globally() -> None:
    net = propos_backbone("cnn", (1, 28, 28), [8, 16, 32])
    assert isinstance(net, ConvNet) and net.out_dim == 32
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in net.modules())
    assert net(torch.rand(2, 1, 28, 28)).shape == (2, 32)


def test_mlp_and_resnet_kinds() -> None:
    assert isinstance(propos_backbone("mlp", (1, 8, 8), [16, 8]), MLP)
    net = propos_backbone("resnet18", (3, 16, 16), [])
    assert isinstance(net, ResNet) and net.out_dim == 512


def test_resnet18_needs_images_of_16x16_or_more() -> None:
    with pytest.raises(ConfigError, match="16x16 or more, got 8x8"):
        propos_backbone("resnet18", (1, 8, 8), [])
