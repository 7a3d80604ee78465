"""Self-CC hyper-parameters (defaults: the released USPS code; docs/specs/self-cc.md §5).

Wang et al., "Self-Correcting Clustering", IEEE TKDE 2025.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from dcflow.config import StrictModel
from dcflow.models.cluster import ModelConfig
from dcflow.train.autoencoder import AEPretrainConfig, AugmentConfig
from dcflow.train.simclr import SimCLRConfig


class RTDSConfig(StrictModel):
    """RTDS hyper-parameters (defaults: the released USPS code)."""

    arch: Literal["mlp", "resnet18"] = Field(
        default="mlp",
        description="mlp: D -> classifier -> K (USPS/MNIST); resnet18: a ResNet-18 on the image "
        "with an MLP head of hidden widths classifier1/classifier2 (STL/CIFAR: 512 / 128)",
    )
    stem: Literal["cifar", "stl"] = "cifar"
    width: int = Field(default=64, ge=1, description="resnet18: first-stage channels")
    classifier1: list[int] = Field(default_factory=lambda: [1000, 500, 300])
    classifier2: list[int] = Field(default_factory=lambda: [300, 500, 1000])
    warmup_epochs: int = Field(default=10, ge=0)
    warmup_batch_size: int = Field(default=1024, ge=1, description="views per warm-up batch")
    cotrain_epochs: int = Field(default=50, ge=0)
    batch_size: int = Field(default=256, ge=1, description="views per co-training batch")
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = Field(default=0.01, gt=0.0)
    momentum: float = Field(default=0.99, ge=0.0, lt=1.0)
    gamma: float = Field(default=1.0, ge=0.0, description="confidence penalty of the warm-up")
    temperature: float = Field(default=0.5, gt=0.0)
    mixup_alpha: float = Field(default=0.3, gt=0.0)
    mixup_draws: int = Field(default=300, ge=1)
    sigma_mode: Literal["released", "fixed_rule", "constant"] = "released"
    sigma: float = Field(default=0.0, ge=0.0, description="unlabelled weight when constant")
    anchor_fraction: float = Field(default=0.02, gt=0.0, le=1.0)
    gmm_tol: float = Field(default=1e-3, gt=0.0)
    gmm_rule: Literal["low_mean", "populous"] = Field(
        default="low_mean",
        description="clean component: low_mean (USPS/MNIST) or the larger one of the most "
        "imbalanced of gmm_fits fits (STL/CIFAR)",
    )
    gmm_fits: int = Field(default=1, ge=1, description="fits under populous (STL/CIFAR: 10)")
    reg_covar: float = Field(default=5e-4, gt=0.0)
    division: Literal["vote", "mean"] = "vote"
    division_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    faithful: bool = Field(default=False, description="released unlabelled loss (pitfall 2)")


class PretrainConfig(AEPretrainConfig):
    """Autoencoder with the feature extractor's architecture (USPS FE: D-500-500-1000-10).

    Upstream ships the FE without its training code; the default is a clean reconstruction with Adam
    (docs/specs/self-cc.md §4.6). ``augment: true`` with ``optimizer: sgd``, ``lr: 1.0`` is
    ASPC-DA's recipe (augmented targets), which the ``usps`` preset uses with the warp in ``views``.
    """

    hidden_dims: list[int] = Field(default_factory=lambda: [500, 500, 1000], min_length=1)
    epochs: int = Field(default=50, ge=1)
    optimizer: Literal["sgd", "adam"] = "adam"
    lr: float = Field(default=1e-3, gt=0.0)
    augment: bool = Field(default=False, description="reconstruct augmented images (ASPC-DA)")
    views: AugmentConfig = Field(
        default_factory=AugmentConfig, description="the warp of the reconstruction when augment"
    )
    fe: Literal["autoencoder", "simclr"] = Field(
        default="autoencoder",
        description="autoencoder: the MLP above (USPS/MNIST); simclr: a contrastive backbone "
        "(pretrain.model, pretrain.simclr) whose L2-normalised features are the codes (STL/CIFAR)",
    )
    model: ModelConfig = Field(default_factory=ModelConfig, description="fe: simclr only")
    simclr: SimCLRConfig = Field(default_factory=SimCLRConfig, description="fe: simclr only")


class ClusterConfig(StrictModel):
    """k-means initialisation and the fuzzifier m (1.1 for USPS/MNIST, 1.04 for STL/CIFAR)."""

    m: float = Field(default=1.1, gt=1.0)
    n_init: int = Field(default=20, ge=1)
    max_iter: int = Field(default=300, ge=1)
    over: float = Field(
        default=1.0,
        ge=1.0,
        description="dcflow option: k-means with round(over * K) clusters merged into K on the "
        "kNN graph (dcflow.clustering.merge); centres = the merged groups' means, and the module "
        "is fitted to the merged labels for fit_epochs; 1 = k-means with K "
        "(docs/specs/self-cc.md §4.6)",
    )
    fit_epochs: int = Field(
        default=10, ge=0, description="module epochs on the merged labels (over > 1; update.*)"
    )


class SelectionConfig(StrictModel):
    """Outer-loop schedule and level-1 selector (USPS: 0.6 + 0.05 t while eta < 1)."""

    eta0: float = Field(default=0.6, gt=0.0, le=1.0)
    eta_step: float = Field(default=0.05, gt=0.0)
    stop: Literal[">=", ">"] = ">="
    selector: Literal["per_cluster_fraction", "per_column_topk"] = "per_cluster_fraction"
    per_cluster: int = Field(default=0, ge=0, description="topk quota base; 0 means N/K")
    agreement_stop: float = Field(default=0.998, gt=0.0, le=1.0)


class ViewsConfig(AugmentConfig):
    """A augmented views per selected sample: random rotation and shift on the device."""

    count: int = Field(default=20, ge=1)


class UpdateConfig(StrictModel):
    """Clustering-module update on argmax Q (USPS: 20 epochs, batch 128, SGD 0.01 mom 0.99)."""

    epochs: int = Field(default=20, ge=0)
    batch_size: int = Field(default=128, ge=1)
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = Field(default=0.01, gt=0.0)
    momentum: float = Field(default=0.99, ge=0.0, lt=1.0)


class SelfCCConfig(StrictModel):
    """All Self-CC hyper-parameters; defaults follow the released USPS code."""

    pretrain: PretrainConfig = Field(default_factory=PretrainConfig)
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    selection: SelectionConfig = Field(default_factory=SelectionConfig)
    views: ViewsConfig = Field(default_factory=ViewsConfig)
    rtds: RTDSConfig = Field(default_factory=RTDSConfig)
    update: UpdateConfig = Field(default_factory=UpdateConfig)
