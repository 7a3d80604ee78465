"""SCAN clustering step (Van Gansbeke et al., ECCV 2020, section 3.2; docs/specs/ruc.md §4.3).

Each visit of anchor ``i`` draws one neighbour uniformly from its ``k+1`` mined candidates (self
included); anchor and neighbour get independent random views; every head gets the SCAN loss and
the heads' losses are summed. After each epoch a label-free validation loss (consistency of each
anchor with its first ``val_neighbors`` candidates minus ``val_entropy_weight`` times the entropy,
eval mode, non-augmented images) scores every head; the lowest (epoch, head) is kept.

Data-parallel under ``--nproc`` (:mod:`dcflow.train.distributed`): every process draws the same
global batch, neighbour picks and views, trains on its shard of them, and the entropy term sees
the global batch (:func:`dcflow.losses.scan.scan_loss`). The validation pass embeds each
process's rows of the pool and gathers them, so every process keeps the same (epoch, head).
"""

from __future__ import annotations

import copy
import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from dcflow.config import StrictModel
from dcflow.data.bank import Images
from dcflow.errors import StageError
from dcflow.losses.scan import entropy, scan_loss
from dcflow.models.cluster import ClusterModel, predict
from dcflow.progress import Curves, Progress
from dcflow.train import distributed as D
from dcflow.train.common import batches, make_optimizer
from dcflow.transforms.views import ViewConfig, random_view


def paper_strong_view(cutout: int = 16) -> ViewConfig:
    """SCAN's strong view: flip, 4 RandAugment ops (geometric ones as affine ranges), Cutout."""
    return ViewConfig(
        flip=True,
        rotation=30.0,
        translate=0.1,
        shear=5.7,
        jitter_p=1.0,
        brightness=0.45,
        contrast=0.45,
        saturation=0.45,
        randaug_ops=2,
        cutout=cutout,
    )


class ScanConfig(StrictModel):
    """SCAN clustering step (defaults: SCAN's CIFAR-10 configuration)."""

    neighbors: int = Field(default=20, ge=1, description="k mined neighbours")
    epochs: int = Field(default=50, ge=1)
    batch_size: int = Field(default=128, ge=2)
    heads: int = Field(default=1, ge=1)
    overcluster: float = Field(
        default=1.0,
        ge=1.0,
        description="train round(overcluster * K) clusters, then merge them on the neighbour "
        "graph (dcflow option for imbalanced data; 1 = SCAN)",
    )
    entropy_weight: float = Field(default=5.0, ge=0.0)
    val_entropy_weight: float = Field(default=1.0, ge=0.0)
    val_neighbors: int = Field(default=5, ge=1)
    optimizer: Literal["sgd", "adam"] = "adam"
    lr: float = Field(default=1e-4, gt=0.0)
    weight_decay: float = Field(default=1e-4, ge=0.0)
    update_backbone: bool = True
    view: ViewConfig = Field(default_factory=paper_strong_view)


def validation_loss(
    logits: torch.Tensor, neighbors: torch.Tensor, n_val: int, entropy_weight: float
) -> torch.Tensor:
    """Per-head label-free SCAN validation loss ``[H]``.

    Args:
        logits: eval-mode logits ``[H, N, K]``.
        neighbors: mined candidates ``[N, k+1]`` (column 0 = self).
        n_val: neighbours per anchor used besides self.
        entropy_weight: weight of the entropy of the mean prediction (1 in SCAN).
    """
    p = F.softmax(logits, dim=2)
    cand = neighbors[:, : n_val + 1]
    dots = torch.einsum("hnk,hnjk->hnj", p, p[:, cand])
    consistency = -torch.log(dots.clamp_min(1e-7)).mean((1, 2))
    return consistency - entropy_weight * entropy(p.mean(1))


def predict_pool(model: ClusterModel, x: Images) -> tuple[torch.Tensor, ...]:
    """:func:`~dcflow.models.cluster.predict` of the whole pool, each process on its own rows.

    The rows are gathered, so every process holds the same ``(logits [H, N, K], features [N, d],
    projections [N, p])``; in one process this is ``predict(model, x)``.
    """
    n = x.shape[0]
    logits, feats, projs = predict(model, x, rows=D.process_rows(n))
    if D.world().size == 1:
        return logits, feats, projs
    logits = D.gather_rows(logits.transpose(0, 1).contiguous(), n).transpose(0, 1)
    return logits, D.gather_rows(feats, n), D.gather_rows(projs, n)


def _scan_epoch(
    model: ClusterModel,
    opt: torch.optim.Optimizer,
    x: Images,
    neighbors: torch.Tensor,
    cfg: ScanConfig,
    gen: torch.Generator,
) -> float:
    """One shuffled epoch of the summed per-head SCAN loss; returns its mean over the pool.

    ``gen`` draws the batches, the neighbour picks and the views of the global batch, the same
    on every process; each process trains on its shard.
    """
    model.train()
    total, count = torch.zeros((), device=x.device), 0
    for batch in batches(x.shape[0], cfg.batch_size, gen, x.device):
        pick = torch.randint(0, neighbors.shape[1], (batch.numel(),), generator=gen)
        nbr = neighbors[batch, pick.to(x.device)]
        anchors = D.shard(random_view(x[batch], cfg.view, gen))
        logits = model(torch.cat([anchors, D.shard(random_view(x[nbr], cfg.view, gen))]))
        n = anchors.shape[0]
        la, ln = logits[:, :n], logits[:, n:]  # [H, B, K] each
        loss = sum(
            (scan_loss(la[h], ln[h], cfg.entropy_weight)[0] for h in range(la.shape[0])),
            torch.zeros((), device=x.device),
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        D.average_gradients(model)
        opt.step()
        total += loss.detach() * n
        count += n
    return float(D.mean_over_processes(total / max(count, 1)))


def scan_train(
    model: ClusterModel,
    x: Images,
    neighbors: torch.Tensor,
    cfg: ScanConfig,
    gen: torch.Generator,
    curves: Curves,
) -> dict[str, float]:
    """Train the heads (and backbone) with the SCAN loss; keep the best (epoch, head) in ``model``.

    Args:
        model: network with ``cfg.heads`` heads; left with the single best head.
        x: pool ``[N, C, H, W]``.
        neighbors: mined candidates ``[N, k+1]`` on ``x.device``.
        cfg: SCAN settings.
        gen: CPU generator.
        curves: per-epoch curves.
    """
    model = D.prepare(model, x.device)
    params = model.parameters() if cfg.update_backbone else model.cluster_head.parameters()
    opt = make_optimizer(params, cfg.optimizer, cfg.lr, cfg.weight_decay)
    best: tuple[float, int, int] = (math.inf, -1, -1)
    best_state: dict[str, torch.Tensor] = {}
    bar, train_loss = Progress("scan", cfg.epochs), math.nan
    for epoch in range(1, cfg.epochs + 1):
        train_loss = _scan_epoch(model, opt, x, neighbors, cfg, gen)
        if not math.isfinite(train_loss):
            raise StageError(f"SCAN diverged (loss {train_loss}) at epoch {epoch}; lower scan.lr")
        val = validation_loss(
            predict_pool(model, x)[0], neighbors, cfg.val_neighbors, cfg.val_entropy_weight
        )
        head = int(val.argmin())
        if float(val[head]) < best[0]:
            best = (float(val[head]), epoch, head)
            best_state = copy.deepcopy(model.state_dict())
        curves.log(epoch, scan_loss=train_loss, scan_val_loss=float(val.min()))
        bar.update(epoch, loss=train_loss, val=float(val.min()))
    model.load_state_dict(best_state)
    model.keep_head(best[2])
    return {
        "scan_loss_last": train_loss,
        "scan_val_loss_best": best[0],
        "scan_best_epoch": float(best[1]),
        "scan_best_head": float(best[2]),
    }
