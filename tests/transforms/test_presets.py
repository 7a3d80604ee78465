"""Bit-for-bit pins of every view family as the methods build and apply it.

Each case draws two views of a fixed batch with one seeded generator (the second view also pins how
many numbers the first one consumed) and compares the sha256 of the output bytes with a constant
recorded from the four view engines that existed before ``dcflow.transforms`` was merged into
shared primitives (``views.py``, ``cc_views.py``, ``propos_views.py``, ``affine.py``). A refactor
of the transforms must keep every constant; a deliberate change of a view re-records the constant
it changes and says why. Inputs come from ``torch.Generator``-seeded uint8 images scaled to
``[0, 1]`` (conftest pins one CPU thread); constants are specific to the CPU float path of the
installed torch.

Configuration values are copied from the presets in ``configs/`` named in each case's comment.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest
import torch

from dcflow.methods import cc as cc_method
from dcflow.methods import propos_config
from dcflow.methods.self_cc_config import ViewsConfig
from dcflow.methods.self_cc_refine import make_views
from dcflow.train.autoencoder import AugmentConfig as KerasAugment
from dcflow.train.ruc import ruc_strong_view, ruc_weak_view
from dcflow.train.scan import paper_strong_view
from dcflow.train.simclr import paper_simclr_view
from dcflow.transforms.cutout import cutout
from dcflow.transforms.presets import CCView, RandomAffine, affine_view, simclr_view
from dcflow.transforms.randaugment import randaugment
from dcflow.transforms.stroke import stroke_jitter
from dcflow.transforms.views import ViewConfig, colour_jitter, random_view
from dcflow.transforms.warp import resize

View = Callable[[torch.Tensor, torch.Generator], torch.Tensor]

S8, S16, S32 = (8, 1, 8, 8), (8, 1, 16, 16), (8, 3, 32, 32)

# scan / ruc digits + mnist presets: simclr.view and scan.view (&weak)
DIGITS_WEAK: dict[str, Any] = {
    "rotation": 15, "translate": 0.12, "zoom": (0.85, 1.15), "shear": 10, "jitter_p": 0.8,
    "brightness": 0.4, "contrast": 0.4, "noise_std": 0.05, "noise_p": 0.5,
}  # fmt: skip
# scan / ruc usps presets: the same weak view plus stroke-width jitter
USPS_WEAK = {**DIGITS_WEAK, "stroke": 0.7}
# selflabel.view and ruc.strong_view of the digits (cutout 3), usps (6) and mnist (10) presets
DIGITS_STRONG: dict[str, Any] = {
    "rotation": 25, "translate": 0.15, "zoom": (0.85, 1.15), "shear": 15, "jitter_p": 0.8,
    "brightness": 0.4, "contrast": 0.4, "noise_std": 0.05, "noise_p": 0.5, "cutout": 3,
}  # fmt: skip
# ruc.weak_view of the digits / usps / mnist presets
DIGITS_RUC_WEAK: dict[str, Any] = {
    "rotation": 10, "translate": 0.1, "zoom": (0.9, 1.1), "jitter_p": 0.8, "brightness": 0.4,
    "contrast": 0.4,
}  # fmt: skip
# scan / ruc stl10 presets: selflabel.view
STL_STRONG: dict[str, Any] = {
    "flip": True, "rotation": 30, "translate": 0.1, "shear": 5.7, "jitter_p": 1.0,
    "brightness": 0.45, "contrast": 0.45, "saturation": 0.45, "randaug_ops": 2, "cutout": 32,
}  # fmt: skip
# cc / uldc augment sections
CC_DIGITS: dict[str, Any] = {
    "crop_area": None, "rotation": 10.0, "shift": 0.125, "zoom": (0.9, 1.1), "hflip": 0.0,
    "jitter": 0.0, "grayscale_p": 0.0, "noise": 0.05,
}  # fmt: skip
CC_USPS = {**CC_DIGITS, "shift": 0.1}  # usps.yaml, mnist.yaml
CC_FASHION = {**CC_DIGITS, "rotation": 0.0, "shift": 0.1, "hflip": 0.5}
CC_DOGS: dict[str, Any] = {"blur_p": 0.5, "blur_kernel": 23}  # imagenet-dogs.yaml
CC_SMOKE: dict[str, Any] = {"crop_area": None, "jitter": 0, "grayscale_p": 0, "hflip": 0}


def _random_view(cfg: dict[str, Any] | ViewConfig) -> View:
    view = cfg if isinstance(cfg, ViewConfig) else ViewConfig(**cfg)
    return lambda x, gen: random_view(x, view, gen)


def _cc(augment: dict[str, Any], size: int | None) -> View:
    """As ``CC.views``: the augment section plus ``model.image_size``."""
    a = cc_method.AugmentConfig(**augment)
    return CCView(size=size, **a.model_dump())


def _propos(augment: dict[str, Any]) -> View:
    """As ``ProPos._view``."""
    a = propos_config.AugmentConfig(**augment)
    if a.kind == "simclr":
        return lambda x, gen: simclr_view(x, gen, crop_min=a.crop_min)
    return lambda x, gen: affine_view(x, gen, a.rotation, a.shift, a.scale, a.noise)


def _keras_flat(augment: dict[str, Any], shape: tuple[int, ...]) -> View:
    """As ASPC-DA / Self-CC pretraining: ``flat_augment`` on flattened ``[B, D]`` images."""
    flat = KerasAugment(**augment).flat_augment(shape[1:])
    return lambda x, gen: flat(x.flatten(1), gen)


def _self_cc_views(views: dict[str, Any]) -> View:
    """As ``SelfCC._outer_step``: ``make_views`` with the ``views`` section's warp (uint8)."""
    v = ViewsConfig(**views)
    aug = RandomAffine(v.rotation, v.shift, v.interpolation, v.stroke)
    return lambda x, gen: make_views(x, v.count, aug, gen)


def _fixed(fn: Callable[[torch.Tensor], torch.Tensor]) -> View:
    return lambda x, gen: fn(x)


CASES: dict[str, tuple[tuple[int, ...], View]] = {
    # SimCLR / SCAN / RUC / Self-CC simclr (views.random_view and its primitives)
    "simclr-paper-rgb": (S32, _random_view(paper_simclr_view())),
    "simclr-paper-grey": (S16, _random_view(paper_simclr_view())),
    "scan-strong-rgb": (S32, _random_view(paper_strong_view())),
    "ruc-weak-rgb": (S32, _random_view(ruc_weak_view())),
    "ruc-strong-rgb": (S32, _random_view(ruc_strong_view())),
    "stl10-selflabel-rgb": (S32, _random_view(STL_STRONG)),
    "digits-weak": (S8, _random_view(DIGITS_WEAK)),
    "usps-weak-stroke": (S16, _random_view(USPS_WEAK)),
    "digits-strong": (S8, _random_view(DIGITS_STRONG)),
    "usps-strong": (S16, _random_view({**DIGITS_STRONG, "cutout": 6})),
    "mnist-strong": (S16, _random_view({**DIGITS_STRONG, "cutout": 10})),
    "digits-ruc-weak": (S8, _random_view(DIGITS_RUC_WEAK)),
    "default-view": (S8, _random_view({})),
    "cutout-rgb": (S32, lambda x, gen: cutout(x, 4, gen)),
    "stroke-jitter": (S16, lambda x, gen: stroke_jitter(x, 0.7, gen)),
    "colour-jitter-rgb": (S32, lambda x, gen: colour_jitter(x, paper_simclr_view(), gen)),
    "randaugment-rgb": (S32, lambda x, gen: randaugment(x, 2, gen)),
    # CC / ULDC (presets.CCView, warp.resize)
    "cc-digits": (S8, _cc(CC_DIGITS, None)),
    "cc-usps": (S16, _cc(CC_USPS, None)),
    "cc-fashion": (S16, _cc(CC_FASHION, None)),
    "cc-cifar10-rgb": (S32, _cc({}, 40)),
    "cc-cifar10-grey": (S16, _cc({}, None)),
    "cc-imagenet-dogs-rgb": (S32, _cc(CC_DOGS, 40)),
    "cc-smoke": (S8, _cc(CC_SMOKE, None)),
    "cc-resize": (S32, _fixed(lambda x: resize(x, 40))),
    # ProPos / HaDis (presets.affine_view, presets.simclr_view)
    "propos-affine-digits": (S8, _propos({"kind": "affine", "noise": 0.05})),
    "propos-affine-mnist": (S16, _propos({"kind": "affine", "shift": 0.07, "noise": 0.05})),
    "propos-affine-smoke": (S8, _propos({"kind": "affine"})),
    "propos-simclr-rgb": (S32, _propos({"kind": "simclr"})),
    "propos-simclr-grey": (S16, _propos({"kind": "simclr"})),
    # ASPC-DA / Self-CC (presets.RandomAffine)
    "aspc-da-default": (S8, _keras_flat({}, S8)),
    "aspc-da-usps": (S16, _keras_flat({"interpolation": "nearest", "stroke": 0.7}, S16)),
    "self-cc-views-digits": (S8, _self_cc_views({"count": 5})),
    "self-cc-views-usps": (S16, _self_cc_views({"count": 5, "rotation": 15})),
    "self-cc-views-rgb": (S32, _self_cc_views({"count": 5, "rotation": 10, "shift": 0.1})),
}

PINS: dict[str, str] = {
    "aspc-da-default": "552d820e567944906cd61647d390928940ed456669cb6a84753468732532f764",
    "aspc-da-usps": "d44cdf3ecf8ca3115371a4c1dded73e428632eddf93179cf7e927687be4009b4",
    "cc-cifar10-grey": "d632676f039a192f51723b71e8f77be76429c145ec2c43182f2c12315dda3a4e",
    "cc-cifar10-rgb": "3f4496b80e58c7a1f6d1a6e06fd7c05194f3ca8edb23b8cd74e54de8fb2fc269",
    "cc-digits": "2faf361457ed1c5a16003e5050044c590c26ea414450b0bf94d55a508d7ea200",
    "cc-fashion": "5f3ca668b0a30931565cca8923f7b509654dcfc70aaf558f4041b5f3e964d802",
    "cc-imagenet-dogs-rgb": "7707f168876e885e1eb5fe38f76837233f656ec54e15c6daf21e182b2ac34999",
    "cc-resize": "e51df9974bbb96421d38b281078a62944f3d919d39a1db25556882dd8bb12818",
    "cc-smoke": "3b4da9e59b379ba2dae1260a6b27109cb8cbbf405e9d6642c197bc8766407788",
    "cc-usps": "18f1f35778e02a1b9948098180170363f6a5701e99c768285e6582d4d31a6daf",
    "colour-jitter-rgb": "6c83110f9197758d4b2dc56a1de853bf8e38ffb7b19c0a34352449d07e0bbc8d",
    "cutout-rgb": "bcc21addfab108b24e87c7f8500db7d55b216583e068e7b790a2886f65082203",
    "default-view": "3b4da9e59b379ba2dae1260a6b27109cb8cbbf405e9d6642c197bc8766407788",
    "digits-ruc-weak": "c1974af00f608b4fd6621d28c930f58579ef03fe7a58412957edd6567dca8d7c",
    "digits-strong": "7e278b9319519c3338eedf29e2984ebfb39cb2bb524309b0e2c32fb2c1b2246f",
    "digits-weak": "444cd5bd9465f94589db8c660afb9744c96c22feb3091b2e212bb03fa82bb3c2",
    "mnist-strong": "d2e36684bac0efc19a6ff0b0653e9fbfcb52f3d55dc68314183d4d3abf2cf06a",
    "propos-affine-digits": "6ba5c6ff39ce13a4cce87fd87dbaccac0de6217f7d3743441c9f65a64f3f4958",
    "propos-affine-mnist": "e313180a813afc25d13172ee56cf3adc41bc2050ac765f23c0cca1c7ff4ccf02",
    "propos-affine-smoke": "845a54ce0118163c7a9de6ae63ae537e7322399f5a7ddfe16e132863cb199089",
    "propos-simclr-grey": "c63f42ac1f9a16eebe02cab161241e11d6f3c95431b50695e4bef74b33e55592",
    "propos-simclr-rgb": "f7437897735161eb9c26b7fddd2cc3f20acf8ca3424af5c9bbfd2737bc5ac25d",
    "randaugment-rgb": "49fba90717ac67a7ab8e843b37fa4df65b546aa7145cbe0b75024dca72e89a7e",
    "ruc-strong-rgb": "76228d2825e3a5fc43c504053a5758e3a380261e241a816826e2513ebf6036f6",
    "ruc-weak-rgb": "961ed0dd09f398251620873bc968f6bc99f72d328431359a1049d356c1a18b2a",
    "scan-strong-rgb": "53bc7b2ff11c562b96871b71baa3cabf19a8e21b936d5fb9b6a4efdaba5a8cde",
    "self-cc-views-digits": "c09a829227c37cb9ca6a8bbe6cbb8309d08f8cecc947e557758a5d2fa8af22b7",
    "self-cc-views-rgb": "f7a1aab4220a2685820d5749954864ff91e80d13e2542c3612c7284f54ac2e15",
    "self-cc-views-usps": "4fa24f016a50832eb902867d636a28720931dc813e6ea062067becbc5cdbaace",
    "simclr-paper-grey": "230bf1fca7028a810ef68abb20afbe499ba3e24e6f4f51088bd51b1a7a8b6882",
    "simclr-paper-rgb": "4a72dc49205a95d53ce220591201f69d10cf54e4fed291a30670273508055597",
    "stl10-selflabel-rgb": "b2f63f9121744f75ee77447f8602e2b785b3ba83b3c14b0fccbea454f744d612",
    "stroke-jitter": "2152995487c80f70350447427d95c5c3f67182404160a98c5aedcf971795c94f",
    "usps-strong": "8eb54d7684fe78fc05c9524f7e81effe29d9057c886493703a516c3c79670ecb",
    "usps-weak-stroke": "29f639d96ad15c8d96550039b5b39fdec0ff75edd405ea35f1ccecd8b089c0f2",
}


def _batch(shape: tuple[int, ...]) -> torch.Tensor:
    gen = torch.Generator().manual_seed(20240601)
    return torch.randint(0, 256, shape, generator=gen, dtype=torch.uint8).float() / 255.0


def digest(name: str) -> str:
    """sha256 of two consecutive views of the case's batch under generator seed 7."""
    shape, view = CASES[name]
    x, gen = _batch(shape), torch.Generator().manual_seed(7)
    out = torch.cat([view(x, gen), view(x, gen)])
    return hashlib.sha256(out.numpy().tobytes()).hexdigest()


def test_every_case_is_pinned() -> None:
    assert set(PINS) == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_view_is_bit_identical_to_the_recorded_one(name: str) -> None:
    assert digest(name) == PINS[name]


# ----------------------------------------------------------------------------- behaviour
# Properties of each preset beyond the pins (moved from tests/test_transforms.py and
# tests/test_cc_views.py).


def _images(n: int = 4, size: int = 8) -> torch.Tensor:
    return torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_zero_rotation_and_shift_reproduces_input(mode: str) -> None:
    x = _images()
    out = RandomAffine(rotation=0.0, shift=0.0, interpolation=mode)(x, torch.Generator())
    assert (out - x).abs().max() <= 1e-6


@pytest.mark.parametrize("shape", [(3, 1, 8, 8), (2, 3, 16, 12)])
def test_random_affine_output_shape_equals_input(shape: tuple[int, int, int, int]) -> None:
    x = torch.rand(*shape)
    assert RandomAffine()(x, torch.Generator().manual_seed(1)).shape == x.shape


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_random_affine_values_stay_within_input_range(mode: str) -> None:
    x = 0.2 + 0.5 * _images(16, 16)
    out = RandomAffine(rotation=30.0, shift=0.3, interpolation=mode)(x, torch.Generator())
    assert out.min() >= x.min() - 1e-6
    assert out.max() <= x.max() + 1e-6
    assert not torch.equal(out, x)


def test_random_affine_deterministic_under_same_generator_seed() -> None:
    x, aug = _images(), RandomAffine()
    a = aug(x, torch.Generator().manual_seed(3))
    b = aug(x, torch.Generator().manual_seed(3))
    c = aug(x, torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_random_affine_matrices_respect_ranges() -> None:
    mats = RandomAffine(rotation=10.0, shift=0.1).matrices(
        1000, torch.Generator().manual_seed(0), torch.device("cpu")
    )
    assert mats.shape == (1000, 2, 3)
    cos = mats[:, 0, 0]
    assert cos.min() >= torch.cos(torch.deg2rad(torch.tensor(10.0))) - 1e-6
    assert mats[:, :, 2].abs().max() <= 0.2 + 1e-6  # shift 0.1 W is 0.2 in normalised coords
    assert mats[:, :, 2].abs().max() > 0.15


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


def test_cc_views_are_batched_seeded_and_in_range() -> None:
    aug = CCView(rotation=10, shift=0.1, zoom=(0.9, 1.1), noise=0.05)
    x = torch.rand(20, 1, 8, 8)
    a = aug(x, torch.Generator().manual_seed(1))
    b = aug(x, torch.Generator().manual_seed(1))
    c = aug(x, torch.Generator().manual_seed(2))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, c)
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0


def test_cc_identity_view_leaves_images_unchanged() -> None:
    x = torch.rand(4, 3, 10, 10)
    assert torch.allclose(CCView()(x, torch.Generator().manual_seed(0)), x, atol=1e-5)


def test_cc_resized_crop_flip_colour_and_blur_output_size() -> None:
    aug = CCView(size=24, crop_area=(0.08, 1.0), hflip=0.5, jitter=0.5, grayscale_p=0.2, blur_p=0.5)
    out = aug(torch.rand(7, 3, 32, 32), torch.Generator().manual_seed(0))
    assert out.shape == (7, 3, 24, 24)
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


@pytest.mark.parametrize("shape", [(6, 1, 8, 8), (6, 3, 32, 32)])
def test_propos_views_are_seeded_and_in_range(shape: tuple[int, ...]) -> None:
    x = torch.rand(shape)
    for view in (_propos({"kind": "affine", "noise": 0.05}), _propos({"kind": "simclr"})):
        a = view(x, torch.Generator().manual_seed(1))
        assert torch.equal(a, view(x, torch.Generator().manual_seed(1)))
        assert a.shape == x.shape and a.min() >= 0 and a.max() <= 1 and not torch.equal(a, x)
