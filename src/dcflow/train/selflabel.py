"""SCAN self-labelling (Van Gansbeke et al., ECCV 2020, section 3.3; docs/specs/ruc.md §4.4).

Per batch, model in train mode: pseudo-labels and confidences from the non-augmented images
without gradient; class-balanced cross-entropy on strong views of the samples with confidence
above the threshold (:func:`dcflow.losses.scan.selflabel_loss`). Batches with no confident sample
are skipped and counted (upstream crashes on them).

Data-parallel under ``--nproc`` (:mod:`dcflow.train.distributed`): each process takes its shard of
the global batch and of its strong views (drawn for the whole batch); the confident set, its class
weights and the loss's denominator are global.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from dcflow.config import StrictModel
from dcflow.data.bank import Images
from dcflow.errors import StageError
from dcflow.losses.scan import selflabel_loss
from dcflow.models.cluster import ClusterModel
from dcflow.progress import Curves, Progress
from dcflow.train import distributed as D
from dcflow.train.common import batches, make_optimizer
from dcflow.train.scan import paper_strong_view
from dcflow.transforms.views import ViewConfig, random_view


class SelfLabelConfig(StrictModel):
    """Self-labelling (defaults: SCAN's CIFAR-10 configuration)."""

    epochs: int = Field(default=200, ge=0)
    batch_size: int = Field(default=1000, ge=1)
    threshold: float = Field(default=0.99, ge=0.0, lt=1.0)
    optimizer: Literal["sgd", "adam"] = "adam"
    lr: float = Field(default=1e-4, gt=0.0)
    weight_decay: float = Field(default=1e-4, ge=0.0)
    drop_last: bool = True
    view: ViewConfig = Field(default_factory=paper_strong_view)


def selflabel_train(
    model: ClusterModel, x: Images, cfg: SelfLabelConfig, gen: torch.Generator, curves: Curves
) -> dict[str, float]:
    """Fine-tune the one-head ``model`` in place on its own confident predictions.

    Returns:
        Metrics: skipped batches, last-epoch confident fraction and loss.
    """
    model = D.prepare(model, x.device)
    opt = make_optimizer(model.parameters(), cfg.optimizer, cfg.lr, cfg.weight_decay)
    bar, skipped, frac, last = Progress("self-label", cfg.epochs), 0, math.nan, math.nan
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        n_conf, seen, steps = 0, 0, 0
        total = torch.zeros((), device=x.device)
        for batch in batches(x.shape[0], cfg.batch_size, gen, x.device, cfg.drop_last):
            idx = D.shard(batch)
            xb = x[idx]
            with torch.no_grad():
                probs = F.softmax(model(xb)[0], dim=1)
            # the global batch's strong views, one-process draws; this process's shard of them
            strong = model(D.shard(random_view(x[batch], cfg.view, gen)))[0]
            loss, k = selflabel_loss(strong, probs, cfg.threshold)
            n_conf, seen = n_conf + k, seen + idx.numel() * D.world().size
            if loss is None:
                skipped += 1
                continue
            opt.zero_grad(set_to_none=True)
            loss.backward()
            D.average_gradients(model)
            opt.step()
            total += loss.detach()
            steps += 1
        # one reduction per epoch: the mean over processes of the summed per-process losses
        frac, last = n_conf / max(seen, 1), float(D.mean_over_processes(total)) / max(steps, 1)
        if not math.isfinite(last):
            raise StageError(f"self-labelling diverged at epoch {epoch}; lower selflabel.lr")
        curves.log(epoch, selflabel_loss=last, confident_fraction=frac)
        bar.update(epoch, loss=last, confident=frac)
    return {"selflabel_skipped_batches": float(skipped), "confident_fraction": frac}
