"""Colour operations: grey, hue rotation, jitter, random grey."""

from __future__ import annotations

import pytest
import torch

from dcflow.transforms.colour import grey, jitter, luma, random_grey, rotate_hue


@pytest.mark.parametrize("fused", [False, True])
def test_hue_rotation_closed_forms(fused: bool) -> None:
    x = torch.rand(3, 3, 5, 5)
    assert torch.allclose(rotate_hue(x, torch.zeros(3), fused), x, atol=1e-5)
    g = grey(x).expand(-1, 3, -1, -1)
    assert torch.allclose(rotate_hue(g, torch.full((3,), 2.0), fused), g, atol=1e-5)
    turn = torch.full((3,), 2 * torch.pi)
    assert torch.allclose(rotate_hue(x, turn, fused), x, atol=1e-5)
    y = rotate_hue(x, torch.full((3,), 1.0), fused)
    assert torch.allclose(grey(y), grey(x), atol=1e-5)  # luma is kept


def test_fused_and_staged_hue_agree() -> None:
    x, angle = torch.rand(4, 3, 6, 6), torch.rand(4) * 6
    assert torch.allclose(rotate_hue(x, angle, True), rotate_hue(x, angle, False), atol=1e-5)


def test_grey_of_one_channel_is_itself_and_luma_weights_sum_to_one() -> None:
    x = torch.rand(2, 1, 4, 4)
    assert grey(x) is x
    assert torch.allclose(luma(x), x, atol=1e-6)
    rgb = torch.rand(2, 3, 4, 4)
    expected = 0.299 * rgb[:, :1] + 0.587 * rgb[:, 1:2] + 0.114 * rgb[:, 2:]
    assert torch.allclose(grey(rgb), expected, atol=1e-6)


@pytest.mark.parametrize("clamp_each", [False, True])
def test_unit_factors_leave_images_unchanged(clamp_each: bool) -> None:
    x, ones = torch.rand(4, 3, 6, 6), torch.ones(4, 1, 1, 1)
    on = torch.ones(4, 1, 1, 1, dtype=torch.bool)
    out = jitter(x, on, (ones, ones, ones), torch.zeros(4), clamp_each=clamp_each)
    assert torch.allclose(out, x, atol=1e-5)


def test_jitter_only_where_on_and_stays_in_range() -> None:
    x = torch.rand(6, 3, 6, 6)
    on = torch.tensor([True, False] * 3).view(6, 1, 1, 1)
    f = torch.full((6, 1, 1, 1), 1.8)
    out = jitter(x, on, (f, f, f), torch.full((6,), 1.0), clamp_each=True)
    assert torch.equal(out[1::2], x[1::2]) and not torch.equal(out[::2], x[::2])
    assert out.min() >= 0 and out.max() <= 1
    brighter = jitter(
        x[:1, :1], on[:1], (f[:1], f[:1].new_ones(1, 1, 1, 1), None), clamp_each=False
    )
    assert torch.allclose(brighter, (x[:1, :1] * 1.8).clamp(0, 1))


def test_random_grey_replaces_selected_images() -> None:
    x = torch.rand(2, 3, 4, 4)
    out = random_grey(x, torch.tensor([True, False]).view(2, 1, 1, 1))
    assert torch.equal(out[0], grey(x[:1])[0].expand(3, -1, -1)) and torch.equal(out[1], x[1])
