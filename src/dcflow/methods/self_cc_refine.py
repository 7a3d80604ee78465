"""Self-CC refine helpers: on-device views, the clustering-module update and predict's read-out.

Wang et al., "Self-Correcting Clustering", IEEE TKDE 2025; docs/specs/self-cc.md §4.1, §4.4, §4.5.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from dcflow.data.bank import Images
from dcflow.errors import WeightsError
from dcflow.handoff import ClusterInitOut, PredictOut, RefineOut, Selection, StateDict
from dcflow.losses.self_cc import module_update_loss
from dcflow.methods.self_cc_config import UpdateConfig
from dcflow.methods.self_cc_rtds import RTDSResult
from dcflow.models.self_cc import ClusteringModule
from dcflow.models.state import load_into
from dcflow.train.common import batches
from dcflow.transforms import RandomAffine


def make_views(
    images: Images, count: int, aug: RandomAffine, gen: torch.Generator, chunk: int = 8192
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
    x: Images,
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
        for idx in batches(len(x), cfg.batch_size, gen, x.device):
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
    x: Images,
    res: RTDSResult,
    picks: list[Pick],
    history: list[dict[str, float]],
) -> RefineOut:
    """The refine stage's output (metrics left empty for the caller).

    ``labels`` (``argmax U``) / ``membership`` / ``embeddings`` / ``centers`` come from the updated
    module, ``proba`` is ``U`` too, so that ECE pairs the confidence and the label of one predictor
    (the last RTDS pair's ``Q / 2`` used to score ``argmax U`` with another predictor's confidence),
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
        u.argmax(1), {}, proba=u, embeddings=z, centers=module.centers,
        membership=u, target=q, selected=selected, division=division, history=history,
        model=module.state_dict(),
    )  # fmt: skip


def predict_module(
    encoder: torch.nn.Module,
    init: ClusterInitOut,
    final: RefineOut | None,
    m: float,
    x: Images,
) -> PredictOut:
    """Assign new images ``x`` ``[M, D]`` as the fit did: ``argmax U`` of the clustering module.

    The fit's final labels are ``argmax U`` (4.1) of the clustering module (encoder + centres)
    after the last module update (4.5), on the clean images (:func:`refine_output`). Predict
    rebuilds that module from refine's ``model.pt`` (encoder and centres together) and reads the
    memberships of ``x`` the same way (``ClusteringModule.infer``: eval mode, same batches), so on
    the fitted images it gives the fit's labels bit for bit. Without ``final``: cluster-init's
    module (its fitted ``model.pt`` when ``cluster.over > 1``, else the pretrained encoder with
    the k-means centres), i.e. the cluster-init assignment.

    Args:
        encoder: the pretrained feature extractor on the device (its weights are replaced).
        init: the run's cluster-init output.
        final: the run's refine output.
        m: the fuzzifier.
        x: ``[M, D]`` flattened new images on the device.

    Returns:
        ``labels`` ``argmax U``; ``proba`` the memberships ``U`` themselves: the module's own soft
        assignment (rows sum to 1), as the fit's ``proba``; ``embeddings`` the module's codes.
    """
    source = final if final is not None else init
    if source.centers is None:
        raise WeightsError("the run saved no clustering-module centres (centers.npy)")
    module = ClusteringModule(encoder, torch.from_numpy(source.centers).to(x.device), m)
    state = final.model if final is not None else init.model
    if final is not None or state is not None:
        load_into(
            module, state, "clustering module",
            needed="refine saved no clustering module (model.pt)",
            misfit="the run's model.pt does not fit the clustering module",
        )  # fmt: skip
    z, u = module.infer(x)
    return PredictOut(u.argmax(1), {}, proba=u, embeddings=z)
