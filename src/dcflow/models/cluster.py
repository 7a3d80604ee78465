"""Backbone + contrastive head + cluster heads, with SCAN's parameter names.

Keys follow the SCAN code base (``backbone.*``, ``contrastive_head.{0,2}.*``,
``cluster_head.{h}.*``) so a SimCLR checkpoint loads into a clustering model with only head keys
differing. The input normalisation (per-channel mean/std of the pretraining pool) is stored as
buffers, so every later stage uses the statistics of the checkpoint (docs/specs/ruc.md pitfall 14).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from dcflow.config import StrictModel
from dcflow.data.bank import ImageBank, Images
from dcflow.models.backbones import build_backbone


class ModelConfig(StrictModel):
    """Network shape (paper: CIFAR ResNet-18, 128-d projection)."""

    backbone: Literal["resnet18", "small_cnn"] = "resnet18"
    stem: Literal["cifar", "stl"] = "cifar"
    width: int = Field(default=64, ge=1, description="resnet18: first-stage channels")
    widths: list[int] = Field(default_factory=lambda: [16, 32, 64], min_length=1)
    proj_dim: int = Field(default=128, ge=1)


class ClusterModel(nn.Module):
    """Images ``[B, C, H, W]`` in [0, 1] -> features, projections and per-head logits.

    Args:
        backbone: feature extractor with an ``out_dim`` attribute.
        proj_dim: dimension of the L2-normalised contrastive projection.
        n_clusters: K, outputs of each cluster head.
        n_heads: number of cluster heads (0 for SimCLR pretraining).
        mean: per-channel input mean ``[C]``.
        std: per-channel input std ``[C]``.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(
        self,
        backbone: nn.Module,
        proj_dim: int,
        n_clusters: int,
        n_heads: int,
        mean: torch.Tensor,
        std: torch.Tensor,
    ) -> None:
        super().__init__()
        dim = int(backbone.out_dim)  # type: ignore[arg-type]
        self.register_buffer("mean", mean.reshape(1, -1, 1, 1).float().clone())
        self.register_buffer("std", std.reshape(1, -1, 1, 1).float().clone())
        self.backbone = backbone
        self.contrastive_head = nn.Sequential(
            nn.Linear(dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, proj_dim)
        )
        self.cluster_head = nn.ModuleList(nn.Linear(dim, n_clusters) for _ in range(n_heads))
        self.feat_dim, self.n_clusters = dim, n_clusters

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone features ``[B, d]`` of normalised images."""
        return self.backbone((x - self.mean) / self.std)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """Unit-norm contrastive projections ``[B, proj_dim]``."""
        return F.normalize(self.contrastive_head(self.features(x)), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of every head ``[H, B, K]``."""
        feats = self.features(x)
        return torch.stack([head(feats) for head in self.cluster_head])

    def keep_head(self, head: int) -> None:
        """Drop every cluster head but ``head`` (the lowest-loss one after SCAN)."""
        self.cluster_head = nn.ModuleList([self.cluster_head[head]])

    def reset_heads(self, n_heads: int = 1) -> None:
        """Replace the cluster heads by freshly initialised ones (RUC section 4.7)."""
        device = self.mean.device
        self.cluster_head = nn.ModuleList(
            nn.Linear(self.feat_dim, self.n_clusters) for _ in range(n_heads)
        ).to(device)


def build_model(
    cfg: ModelConfig,
    image_shape: tuple[int, int, int],
    n_clusters: int,
    n_heads: int,
    mean: torch.Tensor | None = None,
    std: torch.Tensor | None = None,
) -> ClusterModel:
    """The configured backbone with heads; ``mean``/``std`` default to 0/1 (set by a checkpoint)."""
    c, h, _ = image_shape
    if cfg.backbone == "resnet18":
        backbone = build_backbone(
            "resnet18", image_shape, stem=cfg.stem, width=cfg.width, block_layout="stages"
        )
    else:  # small_cnn: pools 8x8 -> 4x4, 16x16 -> 4x4, 28x28 -> 7x7 (docs/specs/ruc.md 5)
        pools = (1,) if h <= 8 else (0, 1)
        backbone = build_backbone(
            "cnn", image_shape, widths=cfg.widths, pool_after=pools, head="gap", stack="layers"
        )
    mean = torch.zeros(c) if mean is None else mean
    std = torch.ones(c) if std is None else std
    return ClusterModel(backbone, cfg.proj_dim, n_clusters, n_heads, mean, std)


def channel_stats(x: Images) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std ``[C]`` of images ``[N, C, H, W]`` (std floored at 1e-3)."""
    if isinstance(x, ImageBank):
        mean, std = x.channel_stats()
        return mean, std.clamp_min(1e-3)
    return x.mean((0, 2, 3)), x.std((0, 2, 3)).clamp_min(1e-3)


@torch.no_grad()
def predict(
    model: ClusterModel, x: Images, batch_size: int = 1024, rows: slice | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Eval-mode pass over ``x`` (or its contiguous ``rows``).

    Returns:
        ``(logits [H, R, K], features [R, d], projections [R, p])`` for the ``R`` rows.
    """
    start, stop = (0, x.shape[0]) if rows is None else (rows.start, rows.stop)
    was = model.training
    model.eval()
    logits, feats, projs = [], [], []
    for i in range(start, stop, batch_size):
        f = model.features(x[i : min(i + batch_size, stop)])
        feats.append(f)
        projs.append(F.normalize(model.contrastive_head(f), dim=1))
        if len(model.cluster_head):
            logits.append(torch.stack([head(f) for head in model.cluster_head]))
    model.train(was)
    out = torch.cat(logits, 1) if logits else torch.empty(0, stop - start, model.n_clusters)
    return out, torch.cat(feats), torch.cat(projs)
