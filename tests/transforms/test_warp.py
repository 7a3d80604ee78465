"""The shared warp: matrix composition, ``grid_sample`` conventions, resize."""

from __future__ import annotations

import math

import pytest
import torch

from dcflow.transforms.warp import affine_matrices, is_identity, resize, warp

IDENTITY = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def _images(n: int = 4, size: int = 8) -> torch.Tensor:
    return torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@pytest.mark.parametrize("padding", ["zeros", "border", "reflection"])
def test_identity_matrix_reproduces_input(mode: str, padding: str) -> None:
    x = _images()
    out = warp(x, IDENTITY.expand(4, 2, 3), mode=mode, padding=padding)
    assert (out - x).abs().max() <= 1e-6


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_one_pixel_shift_moves_an_impulse(mode: str) -> None:
    x = torch.zeros(1, 1, 8, 8)
    x[0, 0, 3, 4] = 1.0
    # output(u) = input(u + t); one pixel of an 8-wide image is 2/8 in normalised coords
    right = warp(x, torch.tensor([[[1.0, 0.0, 0.25], [0.0, 1.0, 0.0]]]), mode=mode)
    expected = torch.zeros_like(x)
    expected[0, 0, 3, 3] = 1.0
    assert (right - expected).abs().max() <= 1e-6
    down = warp(x, torch.tensor([[[1.0, 0, 0], [0, 1.0, -0.25]]]), mode=mode)
    expected = torch.zeros_like(x)
    expected[0, 0, 4, 4] = 1.0
    assert (down - expected).abs().max() <= 1e-6


def test_output_size_and_border_fill() -> None:
    x = torch.rand(3, 2, 8, 8)
    assert warp(x, IDENTITY.expand(3, 2, 3), size=(5, 7)).shape == (3, 2, 5, 7)
    far = torch.tensor([[[1.0, 0.0, 4.0], [0.0, 1.0, 0.0]]]).expand(3, 2, 3)
    assert warp(x, far).abs().max() == 0  # zeros padding
    edge = warp(x, far, padding="border")  # every sample reads the right-most column
    assert torch.allclose(edge, x[..., -1:].expand_as(x))


def test_composition_closed_forms() -> None:
    n = 3
    tx, ty = torch.tensor([0.1, 0.0, -0.2]), torch.tensor([0.0, 0.3, 0.0])
    theta = torch.tensor([0.0, math.pi / 2, 0.3])
    m = affine_matrices(tx, ty, theta=theta)
    c, s = torch.cos(theta), torch.sin(theta)
    rot = torch.stack([torch.stack([c, -s], 1), torch.stack([s, c], 1)], 1)
    assert torch.allclose(m[:, :, :2], rot) and torch.equal(m[:, 0, 2], tx)
    sx, sy, zoom = torch.full((n,), 0.5), torch.full((n,), 0.25), torch.full((n,), 2.0)
    shear, flip = torch.full((n,), 0.1), torch.tensor([-1.0, 1.0, 1.0])
    full = affine_matrices(tx, ty, theta=theta, shear=shear, rows=(sx, sy), zoom=zoom, flip=flip)
    sh = torch.tensor([[1.0, 0.1], [0.0, 1.0]])
    expected = torch.diag(torch.tensor([0.5, 0.25])) @ rot @ sh / 2.0
    expected[:, :, 0] *= flip.view(n, 1)
    assert torch.allclose(full[:, :, :2], expected, atol=1e-6)
    cols = affine_matrices(tx, ty, theta=theta, cols=(sx, sy))
    assert torch.allclose(cols[:, :, :2], rot @ torch.diag(torch.tensor([0.5, 0.25])), atol=1e-6)
    assert is_identity(affine_matrices(torch.zeros(2), torch.zeros(2)))
    assert not is_identity(m)


def test_resize_is_a_no_op_at_native_size() -> None:
    x = torch.rand(2, 1, 8, 8)
    assert resize(x, None) is x and resize(x, 8) is x
    assert resize(x, 16).shape == (2, 1, 16, 16)
