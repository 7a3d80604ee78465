"""Stroke-width jitter by hand."""

from __future__ import annotations

import torch

from dcflow.transforms.stroke import stroke_blend, stroke_jitter


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


def test_full_blend_is_dilation_or_erosion() -> None:
    x = torch.zeros(2, 1, 6, 6)
    x[:, :, 1:5, 1:5] = 1.0
    out = stroke_blend(x, torch.tensor([1.0, -1.0]))
    assert float(out[0].sum()) == 36.0  # grown by one pixel on each side
    assert float(out[1].sum()) == 4.0  # shrunk by one pixel on each side
    assert torch.equal(stroke_blend(x, torch.zeros(2)), x)
