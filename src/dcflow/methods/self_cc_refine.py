"""Self-CC refine helpers: on-device views and the clustering-module update (spec 4.4, 4.5).

Wang et al., "Self-Correcting Clustering", IEEE TKDE 2025; ``shared/methods/self-cc.md``.
"""

from __future__ import annotations

from typing import Literal

import torch

from dcflow.losses.self_cc import module_update_loss
from dcflow.models.self_cc import ClusteringModule
from dcflow.transforms import RandomAffine


def make_views(
    images: torch.Tensor, count: int, aug: RandomAffine, gen: torch.Generator, chunk: int = 8192
) -> torch.Tensor:
    """``count`` random affine views of each image, stored as uint8 (pitfall 11).

    Args:
        images: ``[S, C, H, W]`` float in [0, 1] on the device.
        count: A, views per image.
        aug: the random warp.
        gen: seeded generator (views are deterministic under it).
        chunk: images warped per call.

    Returns:
        ``[S, A, C*H*W]`` uint8.
    """
    out = []
    for i in range(0, images.shape[0], chunk):
        block = images[i : i + chunk].repeat_interleave(count, 0)
        warped = aug(block, gen).clamp_(0.0, 1.0).mul_(255.0).round_().to(torch.uint8)
        out.append(warped.reshape(-1, count, warped[0].numel()))
    if not out:
        return torch.zeros(0, count, images[0].numel(), dtype=torch.uint8, device=images.device)
    return torch.cat(out)


def update_module(
    module: ClusteringModule,
    x: torch.Tensor,
    target: torch.Tensor,
    epochs: int,
    batch_size: int,
    optimizer: Literal["sgd", "adam"],
    lr: float,
    momentum: float,
    gen: torch.Generator,
) -> list[float]:
    """Train encoder and centres on ``-log u_{i, target_i}`` with a fresh optimiser (4.5).

    Args:
        module: the clustering module (trained in place; the last epoch's state is kept).
        x: ``[N, D]`` clean samples.
        target: ``[N]`` int64 ``argmax Q``.
        epochs: E_f.
        batch_size: samples per step.
        optimizer: ``sgd`` (with ``momentum``) or ``adam``.
        lr: learning rate.
        momentum: SGD momentum.
        gen: generator of the shuffles.

    Returns:
        Mean loss per epoch.
    """
    opt: torch.optim.Optimizer = (
        torch.optim.Adam(module.parameters(), lr=lr)
        if optimizer == "adam"
        else torch.optim.SGD(module.parameters(), lr=lr, momentum=momentum)
    )
    module.train()
    losses = []
    for _ in range(epochs):
        total = torch.zeros((), device=x.device)
        for idx in torch.randperm(len(x), generator=gen).to(x.device).split(batch_size):
            loss = module_update_loss(module(x[idx]), target[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach() * idx.numel()
        losses.append(float(total) / len(x))
    return losses
