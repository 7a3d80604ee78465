"""SimCLR pretraining (Chen et al., ICML 2020) as configured by SCAN's ``simclr.py``.

Two random views per image, unit-norm projections of the contrastive head, NT-Xent (Eq. 1). Paper
settings: SGD lr 0.4, momentum 0.9, weight decay 1e-4, batch 512, ``drop_last``, 500 epochs,
per-epoch cosine decay to ``0.4 * 0.1**3``, tau 0.1 (docs/specs/ruc.md §4.2).
"""

from __future__ import annotations

import math
import time
from typing import Literal

import torch
from pydantic import Field

from dcflow.config import StrictModel
from dcflow.data.bank import Images, stream
from dcflow.errors import StageError
from dcflow.losses.ntxent import ntxent_loss
from dcflow.models.cluster import ClusterModel
from dcflow.progress import Curves, Progress
from dcflow.train import distributed as D
from dcflow.train.common import batches, cosine_lr, make_optimizer, set_lr
from dcflow.transforms.views import ViewConfig, random_view


def paper_simclr_view() -> ViewConfig:
    """RandomResizedCrop(0.2-1) + flip + ColorJitter(0.4, 0.4, 0.4, 0.1) p 0.8 + grey p 0.2."""
    return ViewConfig(
        crop_scale=0.2,
        flip=True,
        jitter_p=0.8,
        brightness=0.4,
        contrast=0.4,
        saturation=0.4,
        hue=0.1,
        grayscale_p=0.2,
    )


class SimCLRConfig(StrictModel):
    """SimCLR pretraining (defaults: SCAN's CIFAR configuration)."""

    epochs: int = Field(default=500, ge=1)
    batch_size: int = Field(default=512, ge=2)
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = Field(default=0.4, gt=0.0)
    momentum: float = Field(default=0.9, ge=0.0, lt=1.0)
    weight_decay: float = Field(default=1e-4, ge=0.0)
    cosine: bool = True
    temperature: float = Field(default=0.1, gt=0.0)
    ntxent: Literal["one_way", "symmetric"] = "one_way"
    drop_last: bool = True
    view: ViewConfig = Field(default_factory=paper_simclr_view)


def simclr_train(
    model: ClusterModel,
    x: Images,
    cfg: SimCLRConfig,
    gen: torch.Generator,
    curves: Curves,
) -> dict[str, float]:
    """Train backbone and contrastive head in place on the pool ``x`` ``[N, C, H, W]``.

    Returns:
        Metrics: first and last epoch mean loss.
    """
    model = D.prepare(model, x.device)
    opt = make_optimizer(model.parameters(), cfg.optimizer, cfg.lr, cfg.weight_decay, cfg.momentum)
    bar, first, last = Progress("simclr", cfg.epochs), math.nan, math.nan
    model.train()
    seen, t0 = 0, time.perf_counter()
    for epoch in range(cfg.epochs):
        if cfg.cosine:
            set_lr(opt, cosine_lr(cfg.lr, epoch, cfg.epochs, cfg.lr * 0.1**3))
        total, count = torch.zeros((), device=x.device), 0
        parts = batches(x.shape[0], cfg.batch_size, gen, x.device, cfg.drop_last)
        for batch, xb in stream(x, parts):
            # the global batch's views, one-process draws; this process trains on its shard
            idx = D.shard(batch)
            views = [D.shard(random_view(xb, cfg.view, gen)) for _ in range(2)]
            z = model.project(torch.cat(views))
            loss = ntxent_loss(z[: idx.numel()], z[idx.numel() :], cfg.temperature, cfg.ntxent)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            D.average_gradients(model)
            opt.step()
            total += loss.detach() * idx.numel()
            count += idx.numel()
        last = float(D.mean_over_processes(total / count))
        seen += count * D.world().size
        if not math.isfinite(last):
            raise StageError(f"SimCLR diverged (loss {last}) at epoch {epoch + 1}; lower simclr.lr")
        first = last if epoch == 0 else first
        curves.log(epoch + 1, simclr_loss=last)
        bar.update(epoch + 1, loss=last)
    rate = seen / max(time.perf_counter() - t0, 1e-9)
    return {"simclr_loss_first": first, "simclr_loss_last": last, "samples_per_second": rate}
