"""ResNet blocks and trunks: torchvision parameter counts, stems, widths, the two name layouts."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from dcflow.models.backbones import build_backbone
from dcflow.models.resnet import BasicBlock, make_stem


@pytest.mark.parametrize("depth", ["resnet18", "resnet34"])
def test_resnet_parameter_counts_match_the_torchvision_layout(depth: str) -> None:
    # torchvision resnet18 / resnet34 without fc: 11,176,512 / 21,284,672 parameters
    expected = {"resnet18": 11_176_512, "resnet34": 21_284_672}[depth]
    kind: Any = depth
    net = build_backbone(kind, (3, 224, 224), stem="imagenet", block_layout="flat")
    assert sum(p.numel() for p in net.parameters()) == expected


@pytest.mark.parametrize(("stem", "side"), [("cifar", 32), ("stl", 16), ("imagenet", 8)])
def test_stems_downsample_32px_inputs_as_documented(stem: str, side: int) -> None:
    out = make_stem(stem, 3, 8)(torch.rand(2, 3, 32, 32))  # type: ignore[arg-type]
    assert out.shape == (2, 8, side, side)


def test_basic_block_projects_the_shortcut_only_when_the_shape_changes() -> None:
    assert isinstance(BasicBlock(8, 8, 1).shortcut, torch.nn.Identity)
    block = BasicBlock(8, 16, 2)
    assert block(torch.rand(2, 8, 8, 8)).shape == (2, 16, 4, 4)


@pytest.mark.parametrize("width", [16, 64])
def test_out_dim_is_eight_times_the_first_stage_width(width: int) -> None:
    net = build_backbone("resnet18", (1, 16, 16), width=width)
    assert net.out_dim == 8 * width
    assert net(torch.rand(2, 1, 16, 16)).shape == (2, 8 * width)


def test_block_layouts_differ_only_in_parameter_names() -> None:
    torch.manual_seed(0)
    nested = build_backbone("resnet18", (3, 32, 32), width=8, block_layout="stages")
    torch.manual_seed(0)
    flat = build_backbone("resnet18", (3, 32, 32), width=8, block_layout="flat")
    a, b = nested.state_dict(), flat.state_dict()
    assert next(k for k in a if k.startswith("stages.")) == "stages.0.0.conv1.weight"
    assert next(k for k in b if k.startswith("layers.")) == "layers.0.conv1.weight"
    assert len(a) == len(b)
    assert all(torch.equal(x, y) for x, y in zip(a.values(), b.values(), strict=True))
    flat.load_state_dict(dict(zip(b, a.values(), strict=True)))
    x = torch.rand(2, 3, 32, 32)
    nested.eval(), flat.eval()
    assert torch.equal(nested(x), flat(x))
