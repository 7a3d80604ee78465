"""RUC's robust refine: co-training of two networks with co-refinement and co-refurbishing.

Park et al., "Improving Unsupervised Image Clustering With Robust Learning", CVPR 2021, section 3.2
(docs/specs/ruc.md §4.7). Clean samples are labelled, the rest unlabelled; each network ``A`` is
trained with its peer ``B``:
``L = L_X + lambda_u * r * L_U + L_S`` on MixUp of weak views (targets: co-refined pseudo-labels
for clean samples, sharpened co-guessed predictions for unclean ones) plus label-smoothed CE on
strong views of clean samples. Unclean samples that ``A`` predicts with confidence ``>= tau2`` are
promoted to clean with ``A``'s label (co-refurbishing; the clean set never shrinks). The peer runs
in train mode under ``no_grad`` as released (its BN statistics move; docs/specs/ruc.md pitfall 15).

Data-parallel under ``--nproc`` (:mod:`dcflow.train.distributed`): every process draws the same
global batch, its weak and strong views (drawn for the whole batch, in the one-process order)
and takes its shard. The promotions, the
confidences and the pseudo-labels are gathered, so every process keeps the same clean set. MixUp
runs on the gathered global batch of weak views with the shared generator (same ``lambda`` and
partners as one process); each process forwards its contiguous part of the mixed rows, and every
loss is a sum over the process's rows divided by the global count, so the mean of the processes'
losses is the one-process loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from dcflow.config import StrictModel
from dcflow.data.bank import Images
from dcflow.errors import StageError
from dcflow.losses.mixmatch import (
    mixup,
    mse_probs_sum,
    ramp,
    sharpen,
    smooth_targets,
    soft_cross_entropy_sum,
)
from dcflow.models.cluster import ClusterModel
from dcflow.train import distributed as D
from dcflow.train.common import batches, cosine_lr, set_lr
from dcflow.transforms.views import ViewConfig, random_view


def ruc_weak_view() -> ViewConfig:
    """RUC's weak view: RandomResizedCrop(0.2-1) + horizontal flip."""
    return ViewConfig(crop_scale=0.2, flip=True)


def ruc_strong_view() -> ViewConfig:
    """Weak view + two RandAugment ops + a 16-pixel Cutout square."""
    return ViewConfig(
        crop_scale=0.2, flip=True, rotation=41.0, shear=15.0, randaug_ops=2, cutout=16
    )


class RUCRefineConfig(StrictModel):
    """Robust refine (defaults: RUC's CIFAR-10 script)."""

    epochs: int = Field(default=200, ge=1)
    batch_size: int = Field(default=250, ge=2)
    lr: float = Field(default=0.01, gt=0.0)
    momentum: float = Field(default=0.9, ge=0.0, lt=1.0)
    weight_decay: float = Field(default=5e-4, ge=0.0)
    nesterov: bool = True
    lambda_u: float = Field(default=25.0, ge=0.0)
    ramp_epochs: float | None = Field(default=None, gt=0.0, description="None: = epochs")
    alpha: float = Field(default=4.0, gt=0.0, description="MixUp Beta(alpha, alpha)")
    temperature: float = Field(default=0.5, gt=0.0, description="sharpening T")
    smoothing: float = Field(default=0.5, ge=0.0, lt=1.0, description="label smoothing eps")
    tau2: float = Field(default=0.99, gt=0.0, le=1.0, description="refurbish threshold at e=0")
    tau2_step: float = Field(default=0.0, ge=0.0)
    tau2_every: int = Field(default=40, ge=1)
    fresh_head: bool = True
    calibrate: Literal["none", "agreement"] = Field(
        default="none",
        description="agreement: label-free temperature scaling of the final probabilities "
        "(dcflow; changes ECE only, never an assignment)",
    )
    weak_view: ViewConfig = Field(default_factory=ruc_weak_view)
    strong_view: ViewConfig = Field(default_factory=ruc_strong_view)

    def tau2_at(self, epoch: int) -> float:
        """``tau2 + tau2_step * floor(e / tau2_every)``, capped at 1."""
        return min(1.0, self.tau2 + self.tau2_step * (epoch // self.tau2_every))


@dataclass
class CoState:
    """State shared by both networks: pseudo-labels ``[N]``, clean mask ``[N]``, refurbish count."""

    labels: torch.Tensor
    clean: torch.Tensor
    refurbished: int = 0


@torch.no_grad()
def co_targets(
    net: ClusterModel,
    peer: ClusterModel,
    views: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    labels: torch.Tensor,
    clean: torch.Tensor,
    w_peer: torch.Tensor,
    temperature: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Net probabilities on ``x^o`` ``[B, K]`` and the MixMatch targets ``[B, K]``.

    Clean rows: ``Sharpen((1 - w) onehot(y) + w p_B(x^o))`` (co-refinement, ``w`` = peer
    confidence); unclean rows: ``Sharpen(mean of p_A, p_B on both weak views)`` (co-guessing).
    """
    b = labels.shape[0]
    pa = F.softmax(net(torch.cat(views))[0], dim=1).split(b)
    pb = F.softmax(peer(torch.cat(views))[0], dim=1).split(b)
    guess = sharpen((pa[1] + pa[2] + pb[1] + pb[2]) / 4, temperature)
    w = w_peer.view(-1, 1)
    refined = sharpen((1 - w) * F.one_hot(labels, pa[0].shape[1]).float() + w * pb[0], temperature)
    return pa[0], torch.where(clean.view(-1, 1), refined, guess)


def _losses(
    net: ClusterModel,
    views: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    targets: torch.Tensor,
    labels: torch.Tensor,
    clean: torch.Tensor,
    cfg: RUCRefineConfig,
    gen: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(L_X, L_U, L_S)`` of the global batch (this process's share of it); an absent part is 0.

    ``gen``: the shared generator (MixUp's ``lambda`` and permutation, the strong views of the
    global batch's clean rows).
    """
    size = D.world().size
    w1, w2 = D.gather_constant(views[1]), D.gather_constant(views[2])
    t_all, xm = D.gather_constant(targets), D.gather_constant(clean)
    um = ~xm
    inputs = torch.cat([w1[xm], w2[xm], w1[um], w2[um]])
    tgt = torch.cat([t_all[xm], t_all[xm], t_all[um], t_all[um]])
    mixed, mixed_t, _ = mixup(inputs, tgt, cfg.alpha, gen)
    rows = D.process_rows(mixed.shape[0])
    z, t = net(mixed[rows])[0], mixed_t[rows]
    nx, nu = 2 * int(xm.sum()), 2 * int(um.sum())
    is_x = torch.arange(rows.start, rows.stop, device=z.device) < nx
    zero = z.sum() * 0.0  # 0 that keeps this process in the backward's collectives
    lx = soft_cross_entropy_sum(z[is_x], t[is_x]) * (size / nx) if nx else zero
    lu = mse_probs_sum(z[~is_x], t[~is_x]) * (size / (nu * z.shape[1])) if nu else zero
    ls = zero
    if nx:
        # strong views of every clean row of the global batch; this process keeps its own rows'
        start = int(xm[: D.world().rank * clean.shape[0]].sum())
        strong_all = random_view(D.gather_constant(views[0])[xm], cfg.strong_view, gen)
        own = int(clean.sum())
        if own >= 2:  # BatchNorm cannot train on one row: a lone clean row adds no L_s term
            strong = strong_all[start : start + own]
            smooth = smooth_targets(labels[clean], z.shape[1], cfg.smoothing)
            ls = soft_cross_entropy_sum(net(strong)[0], smooth) * (2 * size / nx)
    return lx, lu, ls


def ruc_pass(
    net: ClusterModel,
    peer: ClusterModel,
    opt: torch.optim.Optimizer,
    x: Images,
    state: CoState,
    peer_conf: torch.Tensor,
    epoch: int,
    cfg: RUCRefineConfig,
    gen: torch.Generator,
) -> tuple[torch.Tensor, dict[str, float]]:
    """One epoch of ``net`` with ``peer``.

    ``gen``: the shared generator (batch order, views, MixUp), the same on every process.

    Returns:
        ``(min-max normalised confidence of net on x^o [N], mean losses)``.
    """
    set_lr(opt, cosine_lr(cfg.lr, epoch, cfg.epochs))
    net.train()
    peer.train()
    conf = torch.zeros(x.shape[0], device=x.device)
    parts = batches(x.shape[0], cfg.batch_size, gen, x.device)
    totals = torch.zeros(3, device=x.device)
    for b, batch in enumerate(parts):
        idx, xo_all = D.shard(batch), x[batch]
        w1, w2 = (D.shard(random_view(xo_all, cfg.weak_view, gen)) for _ in range(2))
        views = (D.shard(xo_all), w1, w2)
        labels, clean = state.labels[idx], state.clean[idx]
        p_o, targets = co_targets(net, peer, views, labels, clean, peer_conf[idx], cfg.temperature)
        _refurbish(state, conf, batch[: idx.numel() * D.world().size], p_o, cfg.tau2_at(epoch))
        lx, lu, ls = _losses(net, views, targets, labels, clean, cfg, gen)
        r = ramp(epoch, b, len(parts), cfg.ramp_epochs or cfg.epochs)
        loss = lx + cfg.lambda_u * r * lu + ls
        opt.zero_grad(set_to_none=True)
        loss.backward()
        D.average_gradients(net)
        opt.step()
        totals += torch.stack([lx.detach(), lu.detach(), ls.detach()])
    lx_m, lu_m, ls_m = (D.mean_over_processes(totals) / len(parts)).tolist()
    if not all(math.isfinite(v) for v in (lx_m, lu_m, ls_m)):
        raise StageError(f"RUC refine diverged at epoch {epoch + 1}; lower ruc.lr")
    normed = (conf - conf.min()) / (conf.max() - conf.min()).clamp_min(1e-12)
    return normed, {"loss_x": lx_m, "loss_u": lu_m, "loss_s": ls_m}


def _refurbish(
    state: CoState, conf: torch.Tensor, used: torch.Tensor, p_o: torch.Tensor, tau2: float
) -> None:
    """Co-refurbishing of the global batch ``used`` (every process alike).

    Records ``net``'s confidence on ``x^o`` and promotes the unclean rows it predicts with
    confidence ``>= tau2`` to clean with its label.
    """
    m, pred = p_o.max(1)
    m, pred = D.gather_constant(m), D.gather_constant(pred)
    conf[used] = m
    promote = ~state.clean[used] & (m >= tau2)
    state.clean[used[promote]] = True
    state.labels[used[promote]] = pred[promote]
    state.refurbished += int(promote.sum())
