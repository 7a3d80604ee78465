from __future__ import annotations

import pytest
import torch

from dcflow.transforms import RandomAffine

IDENTITY = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def _images(n: int = 4, size: int = 8) -> torch.Tensor:
    return torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_identity_matrix_reproduces_input(mode: str) -> None:
    x = _images()
    out = RandomAffine(interpolation=mode).apply(x, IDENTITY.expand(4, 2, 3))
    assert (out - x).abs().max() <= 1e-6


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_zero_rotation_and_shift_reproduces_input(mode: str) -> None:
    x = _images()
    out = RandomAffine(rotation=0.0, shift=0.0, interpolation=mode)(x, torch.Generator())
    assert (out - x).abs().max() <= 1e-6


@pytest.mark.parametrize("shape", [(3, 1, 8, 8), (2, 3, 16, 12)])
def test_output_shape_equals_input(shape: tuple[int, int, int, int]) -> None:
    x = torch.rand(*shape)
    assert RandomAffine()(x, torch.Generator().manual_seed(1)).shape == x.shape


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_values_stay_within_input_range(mode: str) -> None:
    x = 0.2 + 0.5 * _images(16, 16)
    out = RandomAffine(rotation=30.0, shift=0.3, interpolation=mode)(x, torch.Generator())
    assert out.min() >= x.min() - 1e-6
    assert out.max() <= x.max() + 1e-6
    assert not torch.equal(out, x)


def test_deterministic_under_same_generator_seed() -> None:
    x, aug = _images(), RandomAffine()
    a = aug(x, torch.Generator().manual_seed(3))
    b = aug(x, torch.Generator().manual_seed(3))
    c = aug(x, torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_matrices_respect_ranges() -> None:
    mats = RandomAffine(rotation=10.0, shift=0.1).matrices(
        1000, torch.Generator().manual_seed(0), torch.device("cpu")
    )
    assert mats.shape == (1000, 2, 3)
    cos = mats[:, 0, 0]
    assert cos.min() >= torch.cos(torch.deg2rad(torch.tensor(10.0))) - 1e-6
    assert mats[:, :, 2].abs().max() <= 0.2 + 1e-6  # shift 0.1 W is 0.2 in normalised coords
    assert mats[:, :, 2].abs().max() > 0.15


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_one_pixel_shift_moves_an_impulse(mode: str) -> None:
    x = torch.zeros(1, 1, 8, 8)
    x[0, 0, 3, 4] = 1.0
    # output(u) = input(u + t); one pixel of an 8-wide image is 2/8 in normalised coords
    mats = torch.tensor([[[1.0, 0.0, 0.25], [0.0, 1.0, 0.0]]])
    out = RandomAffine(interpolation=mode).apply(x, mats)
    expected = torch.zeros_like(x)
    expected[0, 0, 3, 3] = 1.0
    assert (out - expected).abs().max() <= 1e-6
    down = RandomAffine(interpolation=mode).apply(x, torch.tensor([[[1.0, 0, 0], [0, 1.0, -0.25]]]))
    expected = torch.zeros_like(x)
    expected[0, 0, 4, 4] = 1.0
    assert (down - expected).abs().max() <= 1e-6


def test_random_affine_stroke_is_opt_in_and_seeded() -> None:

    x = torch.rand(8, 1, 16, 16)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    plain = RandomAffine(10.0, 0.1)(x, g1)
    mats = RandomAffine(10.0, 0.1).matrices(8, g2, x.device)
    assert torch.equal(plain, RandomAffine(10.0, 0.1).apply(x, mats))
    assert torch.equal(g1.get_state(), g2.get_state())  # stroke 0 draws nothing extra
    a = RandomAffine(10.0, 0.1, stroke=0.7)(x, torch.Generator().manual_seed(3))
    b = RandomAffine(10.0, 0.1, stroke=0.7)(x, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and not torch.equal(a, plain)
    assert 0.0 <= float(a.min()) and float(a.max()) <= 1.0
