"""Small helpers of the training loops: shuffled batches and optimisers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import torch


def batches(
    n: int, batch_size: int, gen: torch.Generator, device: torch.device, drop_last: bool = False
) -> list[torch.Tensor]:
    """A fresh random permutation of ``range(n)`` split into index batches on ``device``.

    With ``drop_last`` the last partial batch is dropped, unless it is the only batch (small pools
    would otherwise get no step at all; docs/specs/ruc.md pitfall 5).
    """
    parts = list(torch.randperm(n, generator=gen).to(device).split(batch_size))
    if drop_last and len(parts) > 1 and parts[-1].numel() < batch_size:
        parts.pop()
    return parts


def make_optimizer(
    params: Iterable[torch.nn.Parameter],
    kind: Literal["sgd", "adam"],
    lr: float,
    weight_decay: float,
    momentum: float = 0.9,
    nesterov: bool = False,
) -> torch.optim.Optimizer:
    """SGD (with momentum) or Adam with L2 weight decay."""
    if kind == "sgd":
        return torch.optim.SGD(
            params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov
        )
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


def cosine_lr(base: float, epoch: int, epochs: int, floor: float = 0.0) -> float:
    """``floor + (base - floor) (1 + cos(pi e / E)) / 2``."""
    import math

    return floor + (base - floor) * (1 + math.cos(math.pi * epoch / epochs)) / 2


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    """Set the learning rate of every parameter group."""
    for group in opt.param_groups:
        group["lr"] = lr
