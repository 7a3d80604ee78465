"""Shared draws: ranges, devices, coins and crop boxes."""

from __future__ import annotations

import math

import torch

from dcflow.transforms.sample import coin, crop_box, per_image, uniform


def test_uniform_range_shape_and_seed() -> None:
    a = uniform(10_000, -2.0, 3.0, torch.Generator().manual_seed(0))
    assert a.shape == (10_000,) and a.min() >= -2.0 and a.max() < 3.0
    assert abs(float(a.mean()) - 0.5) < 0.05
    b = uniform(10_000, -2.0, 3.0, torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    assert uniform((4, 3), 0.0, 1.0, torch.Generator()).shape == (4, 3)


def test_uniform_is_rand_scaled_and_moves_to_device() -> None:
    raw = torch.rand(5, generator=torch.Generator().manual_seed(1))
    u = uniform(5, 1.0, 1.5, torch.Generator().manual_seed(1), torch.device("cpu"))
    assert torch.equal(u, raw * 0.5 + 1.0)


def test_coin_probability_and_per_image_shape() -> None:
    heads = coin(20_000, 0.3, torch.Generator().manual_seed(0))
    assert heads.dtype == torch.bool and abs(float(heads.float().mean()) - 0.3) < 0.02
    assert not coin(100, 0.0, torch.Generator()).any()
    assert coin(100, 1.0, torch.Generator()).all()
    assert per_image(heads[:6]).shape == (6, 1, 1, 1)


def test_crop_box_fits_inside_the_image() -> None:
    sx, sy, cx, cy = crop_box(5000, (0.08, 1.0), (3 / 4, 4 / 3), torch.Generator().manual_seed(0))
    assert (sx <= 1).all() and (sy <= 1).all() and (sx > 0).all() and (sy > 0).all()
    assert (cx.abs() <= 1 - sx + 1e-6).all() and (cy.abs() <= 1 - sy + 1e-6).all()
    area = sx * sy
    assert area.min() >= 0.08 - 1e-6 and area.max() <= 1 + 1e-6
    ratio = sx / sy  # unclamped boxes keep their drawn aspect ratio
    inside = (sx < 1) & (sy < 1)
    assert ratio[inside].min() >= 3 / 4 - 1e-5 and ratio[inside].max() <= 4 / 3 + 1e-5


def test_square_crop_box_draws_no_ratio() -> None:
    g1, g2 = torch.Generator().manual_seed(2), torch.Generator().manual_seed(2)
    sx, sy, _, _ = crop_box(8, (1.0, 1.0), None, g1)
    assert torch.equal(sx, torch.ones(8)) and torch.equal(sy, torch.ones(8))
    torch.rand(3 * 8, generator=g2)  # area, cx, cy
    assert torch.equal(g1.get_state(), g2.get_state())
    assert math.isclose(float(crop_box(1, (0.25, 0.25), None, g1)[0]), 0.5)
