"""Autoencoder pretraining shared by ASPC-DA and Self-CC.

ASPC-DA (Guo et al., TKDE 2020, Sec. III-A) reconstructs randomly shifted/rotated images, the
target being the augmented image itself, with SGD lr 1.0 and momentum 0.9. Self-CC (Wang et al.,
TKDE 2025) ships its feature extractor without the code that trained it; dcflow's fallback is a
plain reconstruction with Adam, and its ``usps`` preset uses the ASPC-DA recipe above.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import torch
from pydantic import Field

from dcflow.config import StrictModel
from dcflow.data.bank import Images
from dcflow.errors import StageError
from dcflow.models import AutoEncoder
from dcflow.progress import Progress
from dcflow.train.common import batches
from dcflow.transforms import RandomAffine

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


class AugmentConfig(StrictModel):
    """Keras-style random rotation and shift (``ImageDataGenerator`` of ASPC-DA's code)."""

    rotation: float = Field(default=10.0, ge=0.0, le=180.0)
    shift: float = Field(default=0.1, ge=0.0, lt=0.5)
    interpolation: Literal["bilinear", "nearest"] = "bilinear"
    stroke: float = Field(
        default=0.0, ge=0.0, le=1.0, description="stroke-width jitter (dcflow option; 0 = paper)"
    )

    def flat_augment(self, image_shape: tuple[int, ...]) -> Augment:
        """A function warping flattened ``[B, D]`` images as ``image_shape`` ``[C, H, W]``."""
        aug = RandomAffine(self.rotation, self.shift, self.interpolation, self.stroke)

        def apply(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
            return aug(x.view(x.shape[0], *image_shape), gen).flatten(1)

        return apply


class AEPretrainConfig(StrictModel):
    """An MLP autoencoder ``D -> hidden_dims -> embedding_dim`` and its reconstruction training."""

    hidden_dims: list[int] = Field(default_factory=lambda: [500, 500, 2000], min_length=1)
    embedding_dim: int = Field(default=10, ge=1)
    epochs: int = Field(default=500, ge=1)
    batch_size: int = Field(default=256, ge=1)
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = Field(default=1.0, gt=0.0)
    momentum: float = Field(default=0.9, ge=0.0, lt=1.0, description="SGD only")
    augment: bool = Field(default=True, description="reconstruct augmented images (ASPC-DA)")


def pretrain_autoencoder(
    model: AutoEncoder,
    x: Images,
    cfg: AEPretrainConfig,
    augment: Augment | None,
    gen: torch.Generator,
    log: Callable[[int, float], None],
) -> tuple[float, float]:
    """Minimise the batch-mean squared error of ``model(v) - v``, ``v = augment(x)`` or ``x``.

    Args:
        model: the autoencoder, trained in place.
        x: ``[N, D]`` clean samples on the model's device.
        cfg: epochs, batch size, optimiser; ``cfg.augment`` switches ``augment`` on.
        augment: the random warp of a ``[B, D]`` batch (used when ``cfg.augment``).
        gen: CPU generator of shuffles and warps.
        log: called with ``(epoch, mean loss)`` after every epoch.

    Returns:
        Mean loss of the first and of the last epoch.

    Raises:
        StageError: the loss became NaN or infinite (lr 1.0 SGD relies on zero biases).
    """
    opt: torch.optim.Optimizer = (
        torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum)
        if cfg.optimizer == "sgd"
        else torch.optim.Adam(model.parameters(), lr=cfg.lr)
    )
    warp = augment if cfg.augment else None
    bar, losses = Progress("pretrain", cfg.epochs), []
    for epoch in range(1, cfg.epochs + 1):
        total = torch.zeros((), device=x.device)
        for idx in batches(len(x), cfg.batch_size, gen, x.device):
            xb = warp(x[idx], gen) if warp is not None else x[idx]
            loss = torch.nn.functional.mse_loss(model(xb), xb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach() * idx.numel()
        losses.append(float(total) / len(x))
        if not np.isfinite(losses[-1]):
            raise StageError(
                f"pretrain diverged (loss {losses[-1]}) at epoch {epoch}; "
                "lower pretrain.lr or set pretrain.optimizer=adam"
            )
        log(epoch, losses[-1])
        bar.update(epoch, loss=losses[-1])
    return losses[0], losses[-1]
