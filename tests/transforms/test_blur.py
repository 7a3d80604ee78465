"""Gaussian blur and the 3x3 smoothing filter."""

from __future__ import annotations

import torch

from dcflow.transforms.blur import gaussian_blur, smooth


def test_blur_keeps_constants_and_shapes() -> None:
    const = torch.full((2, 3, 9, 9), 0.4)
    assert torch.allclose(gaussian_blur(const, torch.tensor([0.5, 2.0]), 5), const, atol=1e-6)
    blurred = gaussian_blur(torch.rand(2, 1, 9, 9), torch.tensor([1.0, 1.0]), 5)
    assert blurred.shape == (2, 1, 9, 9)
    assert torch.allclose(smooth(const), const, atol=1e-6)


def test_blur_spreads_an_impulse_by_sigma_and_keeps_its_mass() -> None:
    x = torch.zeros(2, 1, 11, 11)
    x[:, :, 5, 5] = 1.0
    out = gaussian_blur(x, torch.tensor([0.5, 2.0]), 7)
    assert torch.allclose(out.sum((1, 2, 3)), torch.ones(2), atol=1e-5)
    assert out[0, 0, 5, 5] > out[1, 0, 5, 5]  # the wider kernel spreads more
    assert torch.allclose(out[0, 0], out[0, 0].T, atol=1e-7)  # separable and symmetric


def test_smooth_weights() -> None:
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 2, 2] = 13.0
    out = smooth(x)
    assert float(out[0, 0, 2, 2]) == 5.0 and float(out[0, 0, 1, 1]) == 1.0
    assert float(out.sum()) == 13.0
