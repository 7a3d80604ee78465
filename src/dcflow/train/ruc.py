"""RUC's robust refine: co-training of two networks with co-refinement and co-refurbishing.

Park et al., "Improving Unsupervised Image Clustering With Robust Learning", CVPR 2021, section 3.2
(docs/specs/ruc.md §4.7). Clean samples are labelled, the rest unlabelled; each network ``A`` is
trained with its peer ``B``:
``L = L_X + lambda_u * r * L_U + L_S`` on MixUp of weak views (targets: co-refined pseudo-labels
for clean samples, sharpened co-guessed predictions for unclean ones) plus label-smoothed CE on
strong views of clean samples. Unclean samples that ``A`` predicts with confidence ``>= tau2`` are
promoted to clean with ``A``'s label (co-refurbishing; the clean set never shrinks). The peer runs
in train mode under ``no_grad`` as released (its BN statistics move; docs/specs/ruc.md pitfall 15).
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
    mse_probs,
    ramp,
    sharpen,
    smooth_targets,
    soft_cross_entropy,
)
from dcflow.models.cluster import ClusterModel
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
    """``(L_X, L_U, L_S)``; a part whose rows are absent is 0."""
    _, w1, w2 = views
    xm, um = clean, ~clean
    inputs = torch.cat([w1[xm], w2[xm], w1[um], w2[um]])
    tgt = torch.cat([targets[xm], targets[xm], targets[um], targets[um]])
    mixed, mixed_t, _ = mixup(inputs, tgt, cfg.alpha, gen)
    z = net(mixed)[0]
    nx, zero = 2 * int(xm.sum()), torch.zeros((), device=z.device)
    lx = soft_cross_entropy(z[:nx], mixed_t[:nx]) if nx else zero
    lu = mse_probs(z[nx:], mixed_t[nx:]) if nx < z.shape[0] else zero
    ls = zero
    if nx:
        strong = random_view(views[0][xm], cfg.strong_view, gen)
        smooth = smooth_targets(labels[xm], z.shape[1], cfg.smoothing)
        ls = soft_cross_entropy(net(strong)[0], smooth)
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

    Returns:
        ``(min-max normalised confidence of net on x^o [N], mean losses)``.
    """
    set_lr(opt, cosine_lr(cfg.lr, epoch, cfg.epochs))
    net.train()
    peer.train()
    conf = torch.zeros(x.shape[0], device=x.device)
    parts = batches(x.shape[0], cfg.batch_size, gen, x.device)
    totals = torch.zeros(3, device=x.device)
    for b, idx in enumerate(parts):
        xo = x[idx]
        views = (xo, random_view(xo, cfg.weak_view, gen), random_view(xo, cfg.weak_view, gen))
        labels, clean = state.labels[idx], state.clean[idx]
        p_o, targets = co_targets(net, peer, views, labels, clean, peer_conf[idx], cfg.temperature)
        m, pred = p_o.max(1)
        conf[idx] = m
        promote = ~clean & (m >= cfg.tau2_at(epoch))
        state.clean[idx[promote]] = True
        state.labels[idx[promote]] = pred[promote]
        state.refurbished += int(promote.sum())
        lx, lu, ls = _losses(net, views, targets, labels, clean, cfg, gen)
        r = ramp(epoch, b, len(parts), cfg.ramp_epochs or cfg.epochs)
        loss = lx + cfg.lambda_u * r * lu + ls
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        totals += torch.stack([lx.detach(), lu.detach(), ls.detach()])
    lx_m, lu_m, ls_m = (totals / len(parts)).tolist()
    if not all(math.isfinite(v) for v in (lx_m, lu_m, ls_m)):
        raise StageError(f"RUC refine diverged at epoch {epoch + 1}; lower ruc.lr")
    normed = (conf - conf.min()) / (conf.max() - conf.min()).clamp_min(1e-12)
    return normed, {"loss_x": lx_m, "loss_u": lu_m, "loss_s": ls_m}
