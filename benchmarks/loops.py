"""Bare PyTorch training loops, one per dcflow pretraining hook, for ``benchmarks/bench.py``.

Each loop builds the same model class the same way, with the same optimiser and learning rate,
batch size, view function and loss function (all from dcflow), and trains it for ``epochs`` epochs
on the same data tensor on the device, with none of dcflow's stage machinery: no progress output,
no curves, no loss bookkeeping, no divergence check, no checkpoint write. The clock starts after
the model and optimiser are built (the hook's clock includes building and saving them), so the
ratio charges every fixed cost of a stage to dcflow.

Every function takes the method object (for its validated config), the dataset (``x``
``[N, C, H, W]``), the device and the number of epochs, and returns dataset samples per second,
``epochs * N / seconds`` (batches a loop drops, as ``drop_last`` does, are dropped by the hook too).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from dcflow.losses.cc import cluster_contrastive_loss, instance_contrastive_loss
from dcflow.losses.hsd import hsd_loss
from dcflow.losses.ntxent import ntxent_loss
from dcflow.losses.propos import alignment_loss
from dcflow.models.autoencoder import AutoEncoder
from dcflow.models.cc_backbones import build_cc_network
from dcflow.models.cluster import build_model, channel_stats
from dcflow.models.propos_net import ProPosNet, ema_momentum
from dcflow.transforms.presets import CCView, RandomAffine, affine_view, simclr_view
from dcflow.transforms.views import random_view

BareLoop = Callable[[Any, Any, torch.device, int], float]


def _images(data: Any, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(data.float_images()).to(device)


def _step(opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def _rate(samples: int, started: float, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    return samples / (time.perf_counter() - started)


def _perm(n: int, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.randperm(n, generator=gen).to(device)


def bare_aspc_pretrain(method: Any, data: Any, device: torch.device, epochs: int) -> float:
    """ASPC-DA: autoencoder reconstructing affine-augmented images (MSE), SGD with momentum."""
    c, a = method.cfg.pretrain, method.cfg.augment
    x = _images(data, device).flatten(1)
    model = AutoEncoder([x.shape[1], *c.hidden_dims, c.embedding_dim]).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=c.lr, momentum=c.momentum)
    aug, gen = RandomAffine(a.rotation, a.shift, a.interpolation), torch.Generator().manual_seed(0)
    started = time.perf_counter()
    for _ in range(epochs):
        for idx in _perm(data.n, gen, device).split(c.batch_size):
            xb = aug(x[idx].view(idx.numel(), *data.image_shape), gen).flatten(1)
            _step(opt, F.mse_loss(model(xb), xb))
    return _rate(epochs * data.n, started, device)


def bare_self_cc_pretrain(method: Any, data: Any, device: torch.device, epochs: int) -> float:
    """Self-CC: autoencoder reconstructing clean images (MSE), Adam."""
    c = method.cfg.pretrain
    x = _images(data, device).flatten(1)
    model = AutoEncoder([x.shape[1], *c.hidden_dims, c.embedding_dim]).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=c.lr)
    gen = torch.Generator().manual_seed(0)
    started = time.perf_counter()
    for _ in range(epochs):
        for idx in _perm(data.n, gen, device).split(c.batch_size):
            _step(opt, F.mse_loss(model(x[idx]), x[idx]))
    return _rate(epochs * data.n, started, device)


def bare_simclr_pretrain(method: Any, data: Any, device: torch.device, epochs: int) -> float:
    """SCAN/RUC SimCLR: two ``random_view`` views, unit projections, NT-Xent; drop_last batches."""
    c, x = method.cfg.simclr, _images(data, device)
    model = build_model(method.cfg.model, data.image_shape, data.n_clusters, 0, *channel_stats(x))
    model = model.to(device).train()
    opt: torch.optim.Optimizer = (
        torch.optim.SGD(
            model.parameters(), lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay
        )
        if c.optimizer == "sgd"
        else torch.optim.Adam(model.parameters(), lr=c.lr, weight_decay=c.weight_decay)
    )
    gen, floor = torch.Generator().manual_seed(0), c.lr * 0.1**3
    started = time.perf_counter()
    for epoch in range(epochs):
        if c.cosine:
            for group in opt.param_groups:
                group["lr"] = floor + (c.lr - floor) * (1 + math.cos(math.pi * epoch / epochs)) / 2
        parts = list(_perm(data.n, gen, device).split(c.batch_size))
        if c.drop_last and len(parts) > 1 and parts[-1].numel() < c.batch_size:
            parts.pop()
        for idx in parts:
            xb, b = x[idx], idx.numel()
            z = model.project(
                torch.cat([random_view(xb, c.view, gen), random_view(xb, c.view, gen)])
            )
            _step(opt, ntxent_loss(z[:b], z[b:], c.temperature, c.ntxent))
    return _rate(epochs * data.n, started, device)


def bare_cc_pretrain(method: Any, data: Any, device: torch.device, epochs: int) -> float:
    """CC/ULDC: two ``CCView`` views, instance + cluster contrast, Adam; full batches only."""
    m, c, x = method.cfg.model, method.cfg.pretrain, _images(data, device)
    ch, h, w = data.image_shape
    shape = (ch, m.image_size, m.image_size) if m.image_size else (ch, h, w)
    model = build_cc_network(
        m.arch, shape, data.n_clusters, m.widths, m.instance_dim, m.head_hidden, m.stem
    ).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=c.lr, weight_decay=c.weight_decay)
    aug = CCView(size=m.image_size, **method.cfg.augment.model_dump())
    gen, b = torch.Generator().manual_seed(0), min(c.batch_size, data.n)
    started = time.perf_counter()
    for _ in range(epochs):
        for idx in _perm(data.n, gen, device)[: (data.n // b) * b].split(b):
            z1, p1 = model(aug(x[idx], gen))
            z2, p2 = model(aug(x[idx], gen))
            loss = instance_contrastive_loss(z1, z2, c.instance_temperature)
            loss = loss + cluster_contrastive_loss(p1, p2, c.cluster_temperature, c.entropy_weight)
            _step(opt, loss)
    return _rate(epochs * data.n, started, device)


def _propos_loss(
    method: Any, net: ProPosNet, xb: torch.Tensor, gen: torch.Generator
) -> torch.Tensor:
    """Warm-up loss of one step: symmetric BYOL alignment (+ HSD for HaDis); sigma 0, no PSL."""
    a, b = method.cfg.augment, xb.shape[0]
    if a.kind == "simclr":
        views = [simclr_view(xb, gen, crop_min=a.crop_min) for _ in range(2)]
    else:
        views = [affine_view(xb, gen, a.rotation, a.shift, a.scale, a.noise) for _ in range(2)]
    q, k = net(torch.cat(views))
    p, k_other = net.predictor(q), torch.cat([k[b:], k[:b]])
    loss = alignment_loss(p, k_other)
    hsd = getattr(method.cfg, "hsd", None)
    if hsd is not None and hsd.weight > 0:
        pair = hsd_loss(p[:b], k_other[:b], hsd.temperature)
        loss = loss + hsd.weight * (pair + hsd_loss(p[b:], k_other[b:], hsd.temperature)) / 2
    return loss


def bare_propos_pretrain(method: Any, data: Any, device: torch.device, epochs: int) -> float:
    """ProPos/HaDis warm-up: SGD (predictor LR x f), linear LR warm-up, EMA after every step."""
    m, o, t, x = method.cfg.model, method.cfg.optim, method.cfg.train, _images(data, device)
    net = ProPosNet(m.backbone, data.image_shape, m.widths, m.hidden, m.dim).to(device).train()
    groups = [
        {"params": list(net.online.parameters()), "lr_factor": 1.0},
        {"params": list(net.predictor.parameters()), "lr_factor": o.predictor_lr_factor},
    ]
    opt = torch.optim.SGD(groups, lr=0.0, momentum=o.momentum, weight_decay=o.weight_decay)
    iters, base = math.ceil(data.n / o.batch_size), o.lr * o.batch_size / 256
    gen = torch.Generator().manual_seed(0)
    started = time.perf_counter()
    for epoch in range(epochs):  # the warm-up: every step is before epoch W, LR = base e / W
        for i, idx in enumerate(_perm(data.n, gen, device).split(o.batch_size)):
            if idx.numel() < 2:
                continue
            step = epoch * iters + i
            for group in opt.param_groups:
                group["lr"] = base * step / (iters * t.warmup_epochs) * group["lr_factor"]
            _step(opt, _propos_loss(method, net, x[idx], gen))
            net.ema_update(ema_momentum(step + 1, t.epochs * iters, t.ema, t.momentum_increase))
    return _rate(epochs * data.n, started, device)
