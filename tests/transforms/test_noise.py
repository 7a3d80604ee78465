"""Additive pixel noise."""

from __future__ import annotations

import torch

from dcflow.transforms.noise import add_noise


def test_noise_is_seeded_clamped_and_sized() -> None:
    x = torch.full((4, 1, 32, 32), 0.5)
    a = add_noise(x, 0.1, torch.Generator().manual_seed(0))
    assert torch.equal(a, add_noise(x, 0.1, torch.Generator().manual_seed(0)))
    assert abs(float((a - x).std()) - 0.1) < 0.01
    assert add_noise(x, 5.0, torch.Generator()).min() >= 0
    assert add_noise(x, 5.0, torch.Generator()).max() <= 1


def test_noise_only_on_selected_images() -> None:
    x = torch.full((4, 1, 8, 8), 0.5)
    on = torch.tensor([True, False, True, False]).view(4, 1, 1, 1)
    out = add_noise(x, 0.1, torch.Generator().manual_seed(0), on)
    assert torch.equal(out[1::2], x[1::2]) and not torch.equal(out[::2], x[::2])
