"""Data-parallel training inside a stage: process group, gathers with gradients, batch shards.

One training function runs in-process (world size 1, every helper here is then the identity) or
under ``torchrun`` with one process per device (issue 22, item 2). The rule that makes ``N``
processes equal one process with the same global batch:

- every process draws the same global permutation (same generator seed) and trains on its own
  contiguous shard of each global batch (:func:`shard`), so the ``N`` shards together are the
  one-process batch;
- every random draw of a step (views, noise, MixUp) is made for the whole global batch from that
  same generator, in the one-process order, and each process keeps its shard of the result, so
  ``N`` processes consume the one-process random stream and train on the one-process views;
- a loss that contrasts a sample with the rest of the batch sees the whole global batch through
  :func:`gather_batch`, an all-gather whose backward all-reduces the gradient, so that process
  ``r``'s loss ``L_r`` is the one-process loss restricted to its anchors and
  ``mean_r L_r = L``;
- DDP averages the parameter gradients over the ``N`` processes, which with the summed gather
  gradient gives exactly ``dL/dtheta`` (derivation in :class:`_AllGather`);
- batch-norm statistics are those of the global batch (:class:`GlobalBatchNorm` on CPU, torch's
  ``SyncBatchNorm`` on CUDA).

Learning rate and batch follow one documented rule: ``batch_size`` in a config is the **global**
batch, split evenly over the processes, and the learning rate is the one that config names. So
``--nproc`` changes speed, never the optimisation.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

M = TypeVar("M", bound=nn.Module)


@dataclass(frozen=True)
class World:
    """This process's place in the process group (rank 0 of 1 when not distributed)."""

    rank: int = 0
    size: int = 1

    @property
    def main(self) -> bool:
        """Whether this process writes artifacts and logs (rank 0)."""
        return self.rank == 0


def world() -> World:
    """The current process group's rank and size, or ``World(0, 1)`` when there is none."""
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size())
    return World()


def env_world_size() -> int:
    """``WORLD_SIZE`` as set by torchrun (1 when unset)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_from_env(device: torch.device) -> World:
    """Join the process group torchrun describes in the environment (gloo on CPU, nccl on CUDA).

    A no-op returning ``World(0, 1)`` when ``WORLD_SIZE`` is unset or 1.
    """
    if env_world_size() <= 1:
        return World()
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend)
    return world()


class _AllGather(torch.autograd.Function):
    """All-gather along dim 0 that keeps gradients.

    Forward: ``Y = [x_0; ...; x_{N-1}]`` on every process. Backward: process ``r`` holds
    ``dL_r/dY``; the total objective is ``sum_r L_r``, whose gradient with respect to ``x_s`` is
    ``sum_r dL_r/dY[s]``, so the backward all-reduces (sums) the incoming gradient and returns
    slice ``s``. DDP then averages over processes: ``(1/N) d(sum_r L_r)/dtheta = dL/dtheta`` when
    ``mean_r L_r`` is the one-process loss.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        w = world()
        parts = [torch.empty_like(x) for _ in range(w.size)]
        dist.all_gather(parts, x.contiguous())
        ctx.rank, ctx.rows = w.rank, x.shape[0]
        return torch.cat(parts)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad)
        return grad[ctx.rank * ctx.rows : (ctx.rank + 1) * ctx.rows]


class _AllReduce(torch.autograd.Function):
    """All-reduce (sum) that keeps gradients: the backward all-reduces the gradient too."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        out = x.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


def gather_batch(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """The global batch of ``x`` and the row where this process's rows start.

    Every process must pass the same number of rows. Gradients flow back to each process's own
    rows (see :class:`_AllGather`). Without a process group: ``(x, 0)``.

    Args:
        x: ``[B, ...]`` this process's rows.

    Returns:
        ``([N * B, ...] tensor, rank * B)``.
    """
    w = world()
    if w.size == 1:
        return x, 0
    return _AllGather.apply(x), w.rank * x.shape[0]


def gather_constant(x: torch.Tensor) -> torch.Tensor:
    """All-gather along dim 0 with no gradient (labels, targets); ``x`` itself when alone."""
    w = world()
    if w.size == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(w.size)]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


def process_rows(n: int) -> slice:
    """This process's contiguous rows of an ``n``-row pool (the first ``n % N`` get one more)."""
    w = world()
    base, extra = divmod(n, w.size)
    start = w.rank * base + min(w.rank, extra)
    return slice(start, start + base + (1 if w.rank < extra else 0))


def gather_rows(x: torch.Tensor, n: int) -> torch.Tensor:
    """The whole ``[n, ...]`` on every process from each one's :func:`process_rows` of it.

    No gradient (E-step embeddings); ``x`` itself when alone. Shards of unequal length are padded
    for the all-gather and trimmed after it.
    """
    w = world()
    if w.size == 1:
        return x
    longest = -(-n // w.size)
    padded = x.new_zeros((longest, *x.shape[1:]))
    padded[: x.shape[0]] = x
    parts = [torch.empty_like(padded) for _ in range(w.size)]
    dist.all_gather(parts, padded)
    sizes = [n // w.size + (1 if r < n % w.size else 0) for r in range(w.size)]
    return torch.cat([p[:size] for p, size in zip(parts, sizes, strict=True)])


def broadcast_(*tensors: torch.Tensor) -> None:
    """Overwrite ``tensors`` in place with rank 0's (k-means labels and centres); alone, a no-op."""
    if world().size == 1:
        return
    for t in tensors:
        dist.broadcast(t, 0)


def all_reduce_sum(x: torch.Tensor) -> torch.Tensor:
    """Sum of ``x`` over processes, differentiable; ``x`` itself when alone."""
    return x if world().size == 1 else _AllReduce.apply(x)


def mean_over_processes(x: torch.Tensor) -> torch.Tensor:
    """Mean of a (detached) metric over processes, for logging the global value on rank 0."""
    w = world()
    if w.size == 1:
        return x
    out = x.detach().clone()
    dist.all_reduce(out)
    return out / w.size


def shard(idx: torch.Tensor) -> torch.Tensor:
    """This process's contiguous part of a global batch (of indices, images or views).

    Every process gets ``len(idx) // N`` rows, so that :func:`gather_batch` sees equal parts; a
    global batch that does not split evenly leaves out its last ``len(idx) % N`` indices (the
    documented rule, docs/scaling.md). One process gets ``idx`` whole.
    """
    w = world()
    if w.size == 1:
        return idx
    rows = idx.shape[0] // w.size
    return idx[w.rank * rows : (w.rank + 1) * rows]


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm over the global batch on any backend (torch's ``SyncBatchNorm`` is GPU-only).

    Ioffe & Szegedy, ICML 2015, Alg. 1, with ``mu_B`` and ``sigma_B^2`` taken over the samples of
    every process: the per-channel sums ``sum x`` and ``sum x^2`` and the count are all-reduced
    (differentiably), so the output and the gradient equal those of one process holding the whole
    batch. Running statistics use the unbiased global variance, as ``nn.BatchNorm`` does.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2-D input (got {input.dim()}-D)")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """Normalise with the global batch's statistics (the local ones when alone or in eval)."""
        if not self.training or world().size == 1:
            return super().forward(input)
        dims = [0, *range(2, input.dim())]
        shape = [1, -1] + [1] * (input.dim() - 2)
        count = torch.tensor(
            [input.numel() / input.shape[1]], dtype=input.dtype, device=input.device
        )
        stats = torch.cat([input.sum(dims), (input * input).sum(dims), count])
        stats = all_reduce_sum(stats)
        c = self.num_features
        n = stats[-1]
        mean = stats[:c] / n
        var = (stats[c : 2 * c] / n - mean * mean).clamp_min(0.0)
        if self.track_running_stats and self.running_mean is not None:
            assert self.running_var is not None and self.num_batches_tracked is not None
            with torch.no_grad():
                m = self.momentum if self.momentum is not None else 0.1
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                unbiased = var.detach() * (n / (n - 1)).detach()
                self.running_var.mul_(1 - m).add_(unbiased, alpha=m)
                self.num_batches_tracked.add_(1)
        out = (input - mean.view(shape)) / torch.sqrt(var.view(shape) + self.eps)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out


def convert_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Swap every batch norm for its global-batch version (``SyncBatchNorm`` on CUDA).

    A no-op without a process group, so one process keeps plain ``nn.BatchNorm``.
    """
    if world().size == 1:
        return module
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return _convert_cpu(module)


def _convert_cpu(module: nn.Module) -> nn.Module:
    out = module
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(
        module, GlobalBatchNorm
    ):
        out = GlobalBatchNorm(
            module.num_features,
            module.eps,
            module.momentum,
            module.affine,
            module.track_running_stats,
        )
        if module.affine:
            with torch.no_grad():
                out.weight.copy_(module.weight)
                out.bias.copy_(module.bias)
        if module.track_running_stats:
            out.running_mean = module.running_mean
            out.running_var = module.running_var
            out.num_batches_tracked = module.num_batches_tracked
        out.train(module.training)
    for name, child in module.named_children():
        out.add_module(name, _convert_cpu(child))
    return out


def prepare(model: M, device: torch.device) -> M:
    """Make ``model`` ready for data-parallel training; a no-op without a process group.

    Swaps batch norm for its global-batch version (in place for every child, so ``model`` keeps
    its identity and its state-dict keys) and broadcasts rank 0's parameters and buffers, so that
    every process starts from the same weights.
    """
    if world().size == 1:
        return model
    converted = convert_batchnorm(model, device)
    assert converted is model, "prepare() expects a container, not a bare batch-norm layer"
    with torch.no_grad():
        for t in [*model.parameters(), *model.buffers()]:
            dist.broadcast(t.data, 0)
    return model


def average_gradients(model: nn.Module) -> None:
    """Average every parameter gradient over the processes (one flattened all-reduce).

    This is what DDP does after ``backward``. DDP's hooks only fire through ``forward``, while the
    methods call several entry points of their networks (``project``, heads, predictors), so the
    trainers call this explicitly between ``backward`` and ``step``. Parameters without a
    gradient are skipped; every process runs the same step, so the set is the same on all.
    """
    w = world()
    if w.size == 1:
        return
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= w.size
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()
