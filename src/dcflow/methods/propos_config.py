"""Hyper-parameters of ProPos and HaDis (pydantic, paper defaults; presets in ``configs/``).

Defaults follow ProPos ``cifar10_r18_propos.yml`` on one device (docs/specs/hadis.md
§5); the CPU-scale presets for digits / USPS / MNIST override them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from dcflow.clustering.merge import MergeConfig
from dcflow.config import StrictModel
from dcflow.models.propos_net import BackboneName


class ModelConfig(StrictModel):
    """Networks (paper: CIFAR ResNet-18, heads 4096 hidden, d = 256)."""

    backbone: BackboneName = "resnet18"
    widths: list[int] = Field(default_factory=lambda: [256, 256], min_length=1)
    hidden: int = Field(default=4096, ge=1)
    dim: int = Field(default=256, ge=2)


class AugmentConfig(StrictModel):
    """Views: ``simclr`` (paper) or ``affine`` (CPU-scale grey digits)."""

    kind: Literal["affine", "simclr"] = "simclr"
    rotation: float = Field(default=10.0, ge=0.0, le=180.0)
    shift: float = Field(default=0.125, ge=0.0, lt=0.5)
    scale: float = Field(default=0.1, ge=0.0, lt=1.0)
    noise: float = Field(default=0.0, ge=0.0)
    crop_min: float = Field(default=0.08, gt=0.0, le=1.0)


class OptimConfig(StrictModel):
    """SGD (paper: lr 0.05 per 256 samples, momentum 0.9, wd 5e-4, predictor x10)."""

    batch_size: int = Field(default=256, ge=2)
    lr: float = Field(default=0.05, gt=0.0, description="base LR per 256 samples")
    momentum: float = Field(default=0.9, ge=0.0, lt=1.0)
    weight_decay: float = Field(default=5e-4, ge=0.0)
    predictor_lr_factor: float = Field(default=10.0, gt=0.0)
    eta_min: float = Field(default=0.0, ge=0.0, le=1.0)


class TrainConfig(StrictModel):
    """EM schedule and loss weights (paper: E 1000, W 50, m 0.996, sigma 0.001, tau 0.5, 0.1)."""

    epochs: int = Field(default=1000, ge=1)
    warmup_epochs: int = Field(default=50, ge=0)
    ema: float = Field(default=0.996, ge=0.0, le=1.0)
    momentum_increase: bool = False
    sigma: float = Field(default=0.001, ge=0.0)
    psl_weight: float = Field(default=0.1, ge=0.0)
    temperature: float = Field(default=0.5, gt=0.0)


class KMeansConfig(StrictModel):
    """E-step k-means (paper: n_init 10, every epoch)."""

    n_init: int = Field(default=10, ge=1)
    max_iter: int = Field(default=300, ge=1)
    every: int = Field(default=1, ge=1)
    readout: Literal["kmeans", "merge"] = Field(
        default="kmeans",
        description="final labels: the last E-step (paper), or over-cluster + kNN-graph merge",
    )
    merge: MergeConfig = Field(default_factory=MergeConfig, description="readout: merge settings")


class ProPosConfig(StrictModel):
    """All ProPos hyper-parameters; defaults follow ``cifar10_r18_propos.yml`` (1 device)."""

    model: ModelConfig = Field(default_factory=ModelConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    kmeans: KMeansConfig = Field(default_factory=KMeansConfig)
    proba_temperature: float = Field(default=0.1, gt=0.0)

    @model_validator(mode="after")
    def _warmup_fits(self) -> ProPosConfig:
        if self.train.warmup_epochs >= self.train.epochs:
            raise ValueError("train.warmup_epochs must be smaller than train.epochs")
        return self


class HSDConfig(StrictModel):
    """HaDis hardness-aware self-distillation (hard-coded upstream: tau_h 0.5, weight 1)."""

    temperature: float = Field(default=0.5, gt=0.0)
    weight: float = Field(default=1.0, ge=0.0)


class HaDisConfig(ProPosConfig):
    """ProPos's hyper-parameters plus the HSD section."""

    hsd: HSDConfig = Field(default_factory=HSDConfig)
