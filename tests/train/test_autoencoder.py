"""The autoencoder pretraining shared by ASPC-DA and Self-CC (dcflow.train.autoencoder)."""

from __future__ import annotations

import pytest
import torch

from dcflow.errors import StageError
from dcflow.models import AutoEncoder
from dcflow.train.autoencoder import AEPretrainConfig, AugmentConfig, pretrain_autoencoder


def _setup(**cfg: object) -> tuple[AutoEncoder, torch.Tensor, AEPretrainConfig]:
    torch.manual_seed(0)
    x = torch.rand(64, 16)
    base: dict[str, object] = {
        "hidden_dims": [8],
        "embedding_dim": 2,
        "epochs": 5,
        "batch_size": 16,
    }
    conf = AEPretrainConfig.model_validate(base | cfg)
    return AutoEncoder([16, 8, 2]), x, conf


def test_loss_goes_down_and_every_epoch_is_logged() -> None:
    model, x, cfg = _setup(optimizer="adam", lr=1e-2, augment=False)
    log: list[tuple[int, float]] = []
    first, last = pretrain_autoencoder(
        model, x, cfg, None, torch.Generator().manual_seed(0), lambda e, v: log.append((e, v))
    )
    assert [e for e, _ in log] == [1, 2, 3, 4, 5] and (log[0][1], log[-1][1]) == (first, last)
    assert last < first


def test_augment_is_used_only_when_switched_on() -> None:
    def boom(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        raise AssertionError("augment called")

    model, x, cfg = _setup(optimizer="adam", lr=1e-2, augment=False)
    pretrain_autoencoder(model, x, cfg, boom, torch.Generator(), lambda e, v: None)
    # with augment on, the target is the warped batch: an all-zero warp is learnt as zeros
    model, x, cfg = _setup(optimizer="adam", lr=1e-2, augment=True, epochs=60)
    _, last = pretrain_autoencoder(
        model, x, cfg, lambda b, g: torch.zeros_like(b), torch.Generator(), lambda e, v: None
    )
    assert last < 1e-3 and model(x).abs().max() < 0.1


def test_divergence_is_one_clear_error() -> None:
    model, x, cfg = _setup(optimizer="sgd", lr=1e30, augment=False)
    with pytest.raises(StageError, match="pretrain diverged .* lower pretrain.lr"):
        pretrain_autoencoder(model, x, cfg, None, torch.Generator(), lambda e, v: None)


def test_flat_augment_keeps_shape_and_identity_at_zero() -> None:
    x = torch.rand(4, 1, 8, 8)
    same = AugmentConfig(rotation=0.0, shift=0.0).flat_augment((1, 8, 8))
    assert torch.allclose(same(x.flatten(1), torch.Generator()), x.flatten(1), atol=1e-6)
    warp = AugmentConfig(rotation=30.0, shift=0.2).flat_augment((1, 8, 8))
    out = warp(x.flatten(1), torch.Generator().manual_seed(1))
    assert out.shape == (4, 64) and not torch.allclose(out, x.flatten(1))
