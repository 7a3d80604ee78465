"""Cutout: one zeroed square per image."""

from __future__ import annotations

import torch

from dcflow.transforms.cutout import cutout


def test_cutout_zeroes_at_most_one_square() -> None:
    x = torch.ones(50, 1, 16, 16)
    out = cutout(x, 4, torch.Generator().manual_seed(0))
    zeros = (out == 0).sum((1, 2, 3))
    assert (zeros >= 1).all() and (zeros <= 16).all()


def test_cutout_zeroes_every_channel_alike() -> None:
    out = cutout(torch.ones(20, 3, 8, 8), 3, torch.Generator().manual_seed(1))
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 1], out[:, 2])
