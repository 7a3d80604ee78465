"""Batched views of dcflow.transforms.views on every supported image shape."""

from __future__ import annotations

import pytest
import torch

from dcflow.train.ruc import ruc_strong_view, ruc_weak_view
from dcflow.train.scan import paper_strong_view
from dcflow.train.simclr import paper_simclr_view
from dcflow.transforms.views import ViewConfig, cutout, random_view

DIGIT_STRONG = ViewConfig(
    rotation=25, translate=0.15, zoom=(0.85, 1.15), shear=15, jitter_p=0.8, brightness=0.4,
    contrast=0.4, noise_std=0.05, noise_p=0.5, cutout=3, randaug_ops=2,
)  # fmt: skip
VIEWS = [paper_simclr_view(), paper_strong_view(), ruc_weak_view(), ruc_strong_view(), DIGIT_STRONG]


@pytest.mark.parametrize("shape", [(6, 1, 8, 8), (6, 1, 16, 16), (6, 1, 28, 28), (6, 3, 32, 32)])
@pytest.mark.parametrize("view", VIEWS)
def test_views_keep_shape_range_and_are_seeded(shape: tuple[int, ...], view: ViewConfig) -> None:
    x = torch.rand(shape)
    a = random_view(x, view, torch.Generator().manual_seed(1))
    b = random_view(x, view, torch.Generator().manual_seed(1))
    c = random_view(x, view, torch.Generator().manual_seed(2))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_default_view_is_identity() -> None:
    x = torch.rand(4, 3, 32, 32)
    assert torch.allclose(random_view(x, ViewConfig(), torch.Generator().manual_seed(0)), x)


def test_cutout_zeroes_at_most_one_square() -> None:
    x = torch.ones(50, 1, 16, 16)
    out = cutout(x, 4, torch.Generator().manual_seed(0))
    zeros = (out == 0).sum((1, 2, 3))
    assert (zeros >= 1).all() and (zeros <= 16).all()
