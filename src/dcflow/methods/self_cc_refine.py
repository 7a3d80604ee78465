"""Self-CC refine helpers: on-device views and the clustering-module update.

Wang et al., "Self-Correcting Clustering", IEEE TKDE 2025; docs/specs/self-cc.md §4.4, §4.5.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from dcflow.handoff import RefineOut, Selection, StateDict
from dcflow.losses.self_cc import module_update_loss
from dcflow.methods.self_cc_config import UpdateConfig
from dcflow.methods.self_cc_rtds import RTDSResult
from dcflow.models.self_cc import ClusteringModule
from dcflow.models.state import load_into
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
    cfg: UpdateConfig,
    gen: torch.Generator,
) -> list[float]:
    """Train encoder and centres on ``-log u_{i, target_i}`` with a fresh optimiser (4.5).

    Args:
        module: the clustering module (trained in place; the last epoch's state is kept).
        x: ``[N, D]`` clean samples.
        target: ``[N]`` int64 ``argmax Q``.
        cfg: epochs E_f, batch size and optimiser.
        gen: generator of the shuffles.

    Returns:
        Mean loss per epoch.
    """
    opt: torch.optim.Optimizer = (
        torch.optim.Adam(module.parameters(), lr=cfg.lr)
        if cfg.optimizer == "adam"
        else torch.optim.SGD(module.parameters(), lr=cfg.lr, momentum=cfg.momentum)
    )
    module.train()
    losses = []
    for _ in range(cfg.epochs):
        total = torch.zeros((), device=x.device)
        for idx in torch.randperm(len(x), generator=gen).to(x.device).split(cfg.batch_size):
            loss = module_update_loss(module(x[idx]), target[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach() * idx.numel()
        losses.append(float(total) / len(x))
    return losses


def load_module(module: ClusteringModule, state: StateDict | None) -> None:
    """Load cluster-init's fitted clustering module (``cluster.over > 1``) into ``module``.

    Raises:
        WeightsError: cluster-init returned no module, or one that does not fit ``module``.
    """
    load_into(
        module, state, "clustering module",
        needed="cluster-init has no fitted clustering module (model.pt)",
        misfit="cluster-init's model.pt does not fit the clustering module",
    )  # fmt: skip


class Pick(NamedTuple):
    """One outer iteration's selection: ``t``, ``eta``, indices ``[S]``, pseudo-labels ``[S]``."""

    t: int
    eta: float
    indices: torch.Tensor
    labels: torch.Tensor


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def refine_output(
    module: ClusteringModule,
    x: torch.Tensor,
    res: RTDSResult,
    picks: list[Pick],
    history: list[dict[str, float]],
) -> RefineOut:
    """The refine stage's output (metrics left empty for the caller).

    ``labels`` (``argmax U``) / ``membership`` / ``embeddings`` / ``centers`` come from the updated
    module, ``proba`` is the last RTDS pair's ``Q / 2`` (classifier probabilities, for ECE),
    ``target`` is ``Q``, ``division`` the last selection's indices with its labelled masks and
    weights, ``selected`` every iteration's selection (``pseudo_labels``, ``t`` per row and ``eta``
    per iteration), ``history`` one row per outer iteration, ``model`` the module's state dict.
    """
    z, u = module.infer(x)
    q = res.target
    division: dict[str, torch.Tensor] = {"indices": picks[-1].indices}
    division.update({f"labelled_h{i + 1}": m for i, m in enumerate(res.labelled)})
    division.update({f"weights_h{i + 1}": w for i, w in enumerate(res.weights)})
    selected = Selection(
        np.concatenate([_np(p.indices) for p in picks]).astype(np.int64),
        {
            "pseudo_labels": np.concatenate([_np(p.labels) for p in picks]).astype(np.int64),
            "t": np.concatenate([np.full(p.indices.numel(), p.t, np.int64) for p in picks]),
            "eta": np.array([p.eta for p in picks], np.float64),
        },
    )
    return RefineOut(
        u.argmax(1), {}, proba=q / q.sum(1, keepdim=True), embeddings=z, centers=module.centers,
        membership=u, target=q, selected=selected, division=division, history=history,
        model=module.state_dict(),
    )  # fmt: skip
