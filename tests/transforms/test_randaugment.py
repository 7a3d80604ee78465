"""RandAugment's photometric ops."""

from __future__ import annotations

import torch

from dcflow.transforms.randaugment import randaugment, sharpness


def test_randaugment_is_seeded_and_in_range() -> None:
    x = torch.rand(16, 3, 8, 8)
    a = randaugment(x, 2, torch.Generator().manual_seed(0))
    assert torch.equal(a, randaugment(x, 2, torch.Generator().manual_seed(0)))
    assert a.shape == x.shape and a.min() >= 0 and a.max() <= 1
    assert not torch.equal(a, x)
    assert torch.equal(randaugment(x, 0, torch.Generator()), x)


def test_sharpness_factor_one_is_identity() -> None:
    x = torch.rand(2, 1, 6, 6)
    assert torch.allclose(sharpness(x, torch.ones(2, 1, 1, 1)), x, atol=1e-6)
