"""Batched views of :func:`dcflow.transforms.views.random_view` on every supported image shape."""

from __future__ import annotations

import pytest
import torch

from dcflow.train.ruc import ruc_strong_view, ruc_weak_view
from dcflow.train.scan import paper_strong_view
from dcflow.train.simclr import paper_simclr_view
from dcflow.transforms.views import ViewConfig, affine_matrices_for, random_view

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
    mats = affine_matrices_for(ViewConfig(), 4, torch.Generator())
    assert torch.equal(mats, torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]).expand(4, 2, 3))


def test_matrices_respect_ranges() -> None:
    cfg = ViewConfig(rotation=20.0, translate=0.1, zoom=(0.5, 0.5))
    mats = affine_matrices_for(cfg, 2000, torch.Generator().manual_seed(0))
    linear = mats[:, :, :2] * 0.5  # undo the zoom: a pure rotation
    assert torch.allclose(torch.linalg.det(linear), torch.ones(2000), atol=1e-5)
    assert linear[:, 0, 0].min() >= torch.cos(torch.deg2rad(torch.tensor(20.0))) - 1e-6
    assert mats[:, :, 2].abs().max() <= 0.2 + 1e-6


def test_stroke_jitter_is_off_by_default_and_keeps_range() -> None:
    x = torch.rand(4, 1, 16, 16)
    gen = torch.Generator().manual_seed(1)
    assert torch.equal(random_view(x, ViewConfig(), gen), x)
    y = random_view(x, ViewConfig(stroke=0.7), torch.Generator().manual_seed(1))
    assert y.shape == x.shape and 0.0 <= float(y.min()) and float(y.max()) <= 1.0
    assert not torch.equal(y, x)
