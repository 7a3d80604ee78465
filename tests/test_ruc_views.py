"""Batched views of dcflow.transforms.views on every supported image shape."""

from __future__ import annotations

import pytest
import torch

from dcflow.train.ruc import ruc_strong_view, ruc_weak_view
from dcflow.train.scan import paper_strong_view
from dcflow.train.simclr import paper_simclr_view
from dcflow.transforms.views import ViewConfig, cutout, random_view, stroke_jitter

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


def test_stroke_jitter_by_hand() -> None:
    x = torch.zeros(64, 1, 5, 5)
    x[:, :, 2, 2] = 1.0  # one lit pixel per image
    y = stroke_jitter(x, 1.0, torch.Generator().manual_seed(0))
    a = torch.empty(64).uniform_(-1, 1, generator=torch.Generator().manual_seed(0))
    assert (a > 0).any() and (a < 0).any()
    for i in range(64):
        ai = float(a[i])
        if ai >= 0:  # toward the 3x3 dilation: the 8 neighbours light up to a, the centre stays
            expected = torch.zeros(5, 5)
            expected[1:4, 1:4] = ai
            expected[2, 2] = 1.0
        else:  # toward the erosion, which removes a lone pixel: it dims to 1 - |a|
            expected = x[i, 0] * (1.0 + ai)
        torch.testing.assert_close(y[i, 0], expected)


def test_stroke_jitter_is_off_by_default_and_keeps_range() -> None:
    x = torch.rand(4, 1, 16, 16)
    gen = torch.Generator().manual_seed(1)
    assert torch.equal(random_view(x, ViewConfig(), gen), x)
    y = random_view(x, ViewConfig(stroke=0.7), torch.Generator().manual_seed(1))
    assert y.shape == x.shape and 0.0 <= float(y.min()) and float(y.max()) <= 1.0
    assert not torch.equal(y, x)
