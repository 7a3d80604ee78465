"""RTDS, the robust target-distribution solver of Self-CC (one outer iteration's refine, part 1).

Wang et al., "Self-Correcting Clustering", IEEE TKDE 2025; docs/specs/self-cc.md §4.4.
Two fresh classifiers are warmed up on augmented views of the selected samples, a two-component
GMM on their per-view losses divides the selection into labelled and unlabelled samples, and the
pair is co-trained DivideMix-style (each net on its peer's division, MixMatch mixing, sharpened
targets). The pair's summed softmax on every clean sample is the target ``Q`` ``[N, K]``.

Views are ``uint8`` ``[S, A, D]`` (pitfall 11) generated on the device from a seeded generator.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from dcflow.data.bank import Images
from dcflow.losses.self_cc import mixmatch_loss, mixup_lambda, sharpen, warmup_loss
from dcflow.methods.self_cc_config import RTDSConfig
from dcflow.models.self_cc import image_classifier, mlp_classifier
from dcflow.selection.self_cc import clean_posterior, divide, transition_sigma
from dcflow.train.common import batches


@dataclass
class RTDSResult:
    """Output of one RTDS run.

    Attributes:
        target: ``[N, K]`` ``softmax(h1(x)) + softmax(h2(x))`` (rows sum to 2).
        labelled: per classifier, ``[S]`` bool mask of its division.
        weights: per classifier, ``[S]`` clean weights ``w``.
        sigma: weight of the unlabelled loss used.
        metrics: scalar diagnostics.
    """

    target: torch.Tensor
    labelled: list[torch.Tensor]
    weights: list[torch.Tensor]
    sigma: float
    metrics: dict[str, float]


def _optimizer(net: nn.Module, cfg: RTDSConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(net.parameters(), lr=cfg.lr)
    return torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=cfg.momentum)


@torch.no_grad()
def _proba(net: nn.Module, x: Images, chunk: int = 8192) -> torch.Tensor:
    """``softmax(net(x))`` ``[M, K]`` in eval mode; ``x`` ``[M, D]`` float or uint8 views."""
    net.eval()
    out = [torch.softmax(net(_float(x[i : i + chunk])), 1) for i in range(0, x.shape[0], chunk)]
    net.train()
    return torch.cat(out)


def _classifier(
    d: int, hidden: list[int], k: int, cfg: RTDSConfig, image_shape: tuple[int, ...] | None
) -> nn.Module:
    """An MLP on the flattened view, or a ResNet-18 + MLP head on the image (``cfg.arch``)."""
    if cfg.arch == "mlp":
        return mlp_classifier([d, *hidden, k])
    if image_shape is None or math.prod(image_shape) != d:
        raise ValueError(f"rtds.arch=resnet18 needs the image shape of the {d}-d views")
    return image_classifier(image_shape, hidden, k, cfg.stem, cfg.width)


def _float(v: torch.Tensor) -> torch.Tensor:
    return v.float() / 255.0 if v.dtype == torch.uint8 else v


def _warmup(
    net: nn.Module,
    opt: torch.optim.Optimizer,
    views: torch.Tensor,
    labels: torch.Tensor,
    cfg: RTDSConfig,
    gen: torch.Generator,
) -> float:
    """Warm-up on every view of the selection (4.4.1); mean loss of the last epoch."""
    flat, a = views.flatten(0, 1), views.shape[1]
    y = labels.repeat_interleave(a)
    last = float("nan")
    for _ in range(cfg.warmup_epochs):
        total = torch.zeros((), device=flat.device)
        for idx in batches(len(flat), cfg.warmup_batch_size, gen, flat.device):
            loss = warmup_loss(net(_float(flat[idx])), y[idx], cfg.gamma)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach() * idx.numel()
        last = float(total) / len(flat)
    return last


def view_losses(net: nn.Module, views: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-view cross-entropy ``[S, A]`` of ``net`` (eval mode) against the pseudo-labels."""
    s, a = views.shape[:2]
    p = _proba(net, views.flatten(0, 1)).clamp_min(1e-12)
    return -torch.log(p.gather(1, labels.repeat_interleave(a)[:, None])).reshape(s, a)


def _mixed_pool(
    net: nn.Module,
    peer: nn.Module,
    views: torch.Tensor,
    labels: torch.Tensor,
    labelled: torch.Tensor,
    w: torch.Tensor,
    lam: float,
    cfg: RTDSConfig,
    gen: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """MixMatch pool (4.4.5): targets, one permutation, ``lam``-mixing; ``(x', y', |L| A)``."""
    s, a = views.shape[:2]
    own = _proba(net, views.flatten(0, 1)).reshape(s, a, -1).mean(1)
    k = own.shape[1]
    other = _proba(peer, views.flatten(0, 1)).reshape(s, a, -1).mean(1)
    wl = w[labelled, None]
    t = sharpen(wl * F.one_hot(labels[labelled], k) + (1 - wl) * own[labelled], cfg.temperature)
    q = sharpen((own[~labelled] + other[~labelled]) / 2, cfg.temperature)
    x = torch.cat([_float(views[labelled].flatten(0, 1)), _float(views[~labelled].flatten(0, 1))])
    y = torch.cat([t.repeat_interleave(a, 0), q.repeat_interleave(a, 0)])
    perm = torch.randperm(len(x), generator=gen).to(x.device)
    return lam * x + (1 - lam) * x[perm], lam * y + (1 - lam) * y[perm], int(labelled.sum()) * a


def _cotrain_pass(
    net: nn.Module,
    peer: nn.Module,
    opt: torch.optim.Optimizer,
    views: torch.Tensor,
    labels: torch.Tensor,
    division: tuple[torch.Tensor, torch.Tensor],
    sigma: float,
    lam: float,
    cfg: RTDSConfig,
    gen: torch.Generator,
) -> float:
    """One epoch of ``net`` on its peer's division; mean batch loss (nan if none is labelled)."""
    labelled, w = division
    if not bool(labelled.any()):  # empty labelled set: skip this net (pitfall 13)
        return float("nan")
    x, y, n_x = _mixed_pool(net, peer, views, labels, labelled, w, lam, cfg, gen)
    dev, bs = x.device, cfg.batch_size
    xb_idx = batches(n_x, bs, gen, dev)
    n_u = len(x) - n_x
    ub_idx = [idx + n_x for idx in batches(n_u, bs, gen, dev)] if n_u else []
    losses = []
    for i, idx in enumerate(xb_idx):
        u = ub_idx[i % len(ub_idx)] if ub_idx else None  # cycle U'; never an empty loader
        lu = net(x[u]) if u is not None else None
        yu = y[u] if u is not None else None
        loss = mixmatch_loss(net(x[idx]), y[idx], lu, yu, sigma, _faithful_views(cfg, views))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return sum(losses) / len(losses)


def _faithful_views(cfg: RTDSConfig, views: torch.Tensor) -> int:
    """``A`` for the released (faithful) unlabelled loss, else 0."""
    return int(views.shape[1]) if cfg.faithful else 0


def estimate_sigma(
    nets: Sequence[nn.Module], views: torch.Tensor, labels: torch.Tensor, k: int, cfg: RTDSConfig
) -> float:
    """Sigma per ``cfg.sigma_mode`` (4.4.4); ``fixed_rule`` builds T on per-cluster anchors."""
    if cfg.sigma_mode == "released":
        return 0.0
    if cfg.sigma_mode == "constant":
        return cfg.sigma
    t = torch.eye(k, device=views.device)
    for c in range(k):
        members = torch.nonzero(labels == c).squeeze(1)  # grouped, most confident first
        if members.numel() == 0:
            continue
        anchors = views[members[: max(1, math.ceil(cfg.anchor_fraction * members.numel()))]]
        flat = anchors.flatten(0, 1)
        t[:, c] = sum(_proba(n, flat).mean(0) for n in nets) / len(nets)
    return transition_sigma(t)


def run_rtds(
    views: torch.Tensor,
    labels: torch.Tensor,
    x: Images,
    k: int,
    cfg: RTDSConfig,
    gen: torch.Generator,
    seed: int = 0,
    image_shape: tuple[int, ...] | None = None,
) -> RTDSResult:
    """Warm-up, GMM division, co-training and the target ``Q`` (docs/specs/self-cc.md §4.4.1-4.4.6).

    Args:
        views: ``[S, A, D]`` uint8 (or float) augmented views of the selected samples.
        labels: ``[S]`` int64 pseudo-labels, grouped by cluster, most confident first.
        x: ``[N, D]`` clean samples that receive the target.
        k: number of clusters K.
        cfg: RTDS settings.
        gen: CPU generator for shuffles and mixing.
        seed: random state of the GMM fits.
        image_shape: ``(C, H, W)`` of a view, needed by ``cfg.arch = resnet18``.
    """
    nets = [
        _classifier(views.shape[2], dims, k, cfg, image_shape).to(x.device)
        for dims in (cfg.classifier1, cfg.classifier2)
    ]
    opts = [_optimizer(n, cfg) for n in nets]  # the same instance serves warm-up and co-training
    metrics: dict[str, float] = {}
    divisions = []
    for i, (net, opt) in enumerate(zip(nets, opts, strict=True), start=1):
        metrics[f"warmup_loss_h{i}"] = _warmup(net, opt, views, labels, cfg, gen)
        post = clean_posterior(
            view_losses(net, views, labels),
            cfg.gmm_tol,
            cfg.reg_covar,
            seed,
            cfg.gmm_rule,
            cfg.gmm_fits,
        )
        divisions.append(divide(post, cfg.division, cfg.division_threshold))
        metrics[f"labelled_fraction_h{i}"] = float(divisions[-1][0].float().mean())
    sigma = estimate_sigma(nets, views, labels, k, cfg)
    lam = mixup_lambda(cfg.mixup_alpha, cfg.mixup_draws, gen)
    for _ in range(cfg.cotrain_epochs):  # h2 learns from h1's division, then h1 from h2's
        metrics["cotrain_loss_h2"] = _cotrain_pass(
            nets[1], nets[0], opts[1], views, labels, divisions[0], sigma, lam, cfg, gen
        )
        metrics["cotrain_loss_h1"] = _cotrain_pass(
            nets[0], nets[1], opts[0], views, labels, divisions[1], sigma, lam, cfg, gen
        )
    target = _proba(nets[0], x) + _proba(nets[1], x)
    metrics.update(sigma=sigma, mixup_lambda=lam)
    return RTDSResult(
        target, [dv[0] for dv in divisions], [dv[1] for dv in divisions], sigma, metrics
    )
