"""ProPos: prototype scattering and positive sampling, and the training core HaDis extends.

Z. Huang, J. Chen, J. Zhang, H. Shan, "Learning Representation for Clustering via Prototype
Scattering and Positive Sampling", IEEE TPAMI 2022 (arXiv 2111.11821). Re-implemented from
docs/specs/hadis.md; the upstream code (no licence) is not copied.

Stages (one EM run cut into coarse steps):
    pretrain: warm-up epochs ``1..W``: symmetric alignment with ``sigma = 0``, no PSL (plus HSD for
        HaDis). Its weights hold the online/target/predictor nets and the SGD momentum buffers.
    cluster-init: first E-step, k-means on the L2-normalised *target* embeddings (pitfall 8).
    refine: epochs ``W+1..E``: M-step with ``L_align + lambda L_psl`` (Eq. 4-6) on the current
        pseudo-labels, then an E-step every ``kmeans.every`` epochs and after the last one.

Per step: both views go through the online net in one batch of ``2B`` (BN statistics over both
views), the target net likewise, and the predictor once on the noisy ``v = q + sigma eps``; the
alignment loss of both directions is averaged, PSL is averaged over the two directions. SGD with
``lr = optim.lr * batch / 256`` (pitfall 2: the scaling is explicit here), predictor LR x10, linear
warm-up then cosine over ``E`` (pitfall 3, kept), EMA after each SGD step.

Final outputs: ``labels.npy`` (last k-means), ``embeddings.npy`` (normalised target embeddings),
``proba.npy`` = ``softmax_c(-||z - mu_c||^2 / (2 T))`` with ``T = proba_temperature``: for unit
centres this is ``softmax(z . mu_c / T)``, and its argmax is always the k-means label. With
``kmeans.readout: merge`` (a dcflow option, not in the paper) the final labels and ``proba.npy``
come instead from over-clustering the same embeddings and merging the fragments on the kNN graph
(:mod:`dcflow.clustering.merge`); the E-steps that drive training are unchanged. ``predict``
embeds new images with the refined target network and applies the saved read-out (``readout.npz``).

Upstream defects handled: k-means leaving a cluster empty no longer scores ACC 0 (dcflow's Hungarian
match is rectangular, pitfall 7) and the number of empty clusters is logged; no
``torch.distributed`` or ``.cuda()`` (pitfalls 5, 12, 15); the predictor runs once per step and its
output is shared by alignment and HSD (pitfall 10). Deviation: k-means is Euclidean on unit vectors
with ``kmeans.n_init`` restarts (the CPU suggestion of docs/specs/hadis.md §5), not cosine k-means.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import torch

from dcflow.clustering import KMeans, nonempty_clusters, squared_distances
from dcflow.clustering.metrics import cluster_acc
from dcflow.data.bank import stream
from dcflow.errors import StageError, WeightsError
from dcflow.handoff import ClusterInitOut, PredictOut, PretrainOut, RefineOut, SelectionOut
from dcflow.losses.propos import alignment_loss, prototype_scattering_loss
from dcflow.methods.base import Method, StageContext
from dcflow.methods.cc import Readout, merge_readout, soft_readout
from dcflow.methods.propos_config import ProPosConfig
from dcflow.methods.registry import register_method
from dcflow.models.propos_net import (
    ProPosNet,
    checkpoint_state,
    ema_momentum,
    learning_rate,
    make_optimizer,
    restore_checkpoint,
)
from dcflow.models.state import load_into, load_state
from dcflow.progress import Progress
from dcflow.train import distributed as D
from dcflow.train.common import batches
from dcflow.transforms.presets import affine_view, simclr_view

ESTEP_CHUNK = 4096  # rows embedded per call: a multiple of embed_target's batch (1024)


@register_method
class ProPos(Method):
    """ProPos (Huang et al., TPAMI 2022): BYOL + positive sampling + prototype scattering, EM."""

    name = "propos"
    smoke: ClassVar[tuple[str, ...]] = tuple(
        "model.backbone=mlp model.widths=[32] model.hidden=32 model.dim=16 "
        "augment.kind=affine optim.batch_size=64 train.epochs=3 train.warmup_epochs=1 "
        "kmeans.n_init=1".split()
    )
    paper = (
        "Huang et al., Learning representation for clustering via prototype scattering, TPAMI 2022"
    )
    Config = ProPosConfig
    stages = ("download-weights", "pretrain", "cluster-init", "refine", "evaluate")
    pretrain_sections: ClassVar[tuple[str, ...]] = ("model", "augment", "optim", "train")
    data_parallel: ClassVar[frozenset[str]] = frozenset({"pretrain", "refine"})
    cfg: ProPosConfig

    def proba_kind(self) -> str:
        """PROBA is a softmax over distances to the k-means (or merge) centres: constructed."""
        return "constructed"

    # ---------------------------------------------------------------- networks and data
    def _net(self, ctx: StageContext) -> ProPosNet:
        m = self.cfg.model
        return ProPosNet(m.backbone, ctx.data.image_shape, m.widths, m.hidden, m.dim).to(ctx.device)

    def _optimizer(self, net: ProPosNet) -> torch.optim.SGD:
        o = self.cfg.optim
        return make_optimizer(net, o.momentum, o.weight_decay, o.predictor_lr_factor)

    def _load(self, ctx: StageContext) -> tuple[ProPosNet, torch.optim.SGD]:
        if ctx.weights is None:
            raise WeightsError("this stage needs the warm-up weights")
        net = D.prepare(self._net(ctx), ctx.device)  # before the optimiser: it swaps BN layers
        opt = self._optimizer(net)
        try:
            restore_checkpoint(load_state(ctx.weights), net, opt)
        except RuntimeError:
            raise WeightsError(
                f"weights {ctx.weights} do not fit the configured networks"
            ) from None
        return net, opt

    def _view(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        a = self.cfg.augment
        if a.kind == "simclr":
            return simclr_view(x, gen, crop_min=a.crop_min)
        return affine_view(x, gen, a.rotation, a.shift, a.scale, a.noise)

    # ---------------------------------------------------------------- one SGD step
    def _extra_losses(
        self, p: torch.Tensor, k_other: torch.Tensor, b: int
    ) -> dict[str, torch.Tensor]:
        """Further loss terms on the shared predictor output (HaDis adds HSD); weighted sums."""
        return {}

    def _step_losses(
        self,
        net: ProPosNet,
        xb: torch.Tensor,
        labels: torch.Tensor | None,
        n_clusters: int,
        sigma: float,
        gen: torch.Generator,
    ) -> dict[str, torch.Tensor]:
        """Weighted loss terms of one symmetric step on the global batch ``xb`` ``[B, C, H, W]``.

        The views and the noise are drawn for the whole global batch (the one-process draws);
        this process trains on its shard of them (:mod:`dcflow.train.distributed`).
        """
        t = self.cfg.train
        views = [D.shard(self._view(xb, gen)) for _ in range(2)]
        q, k = net(torch.cat(views))  # [2b, d] each, b = this process's rows
        b = views[0].shape[0]
        if sigma > 0:
            noise = torch.randn((2, xb.shape[0], q.shape[1]), generator=gen).to(q.device)
            q_noisy = q + sigma * torch.cat([D.shard(noise[0]), D.shard(noise[1])])
        else:
            q_noisy = q
        p = net.predictor(q_noisy)  # one predictor pass, shared (pitfall 10)
        k_other = torch.cat([k[b:], k[:b]])  # each view's partner
        terms = {"align": alignment_loss(p, k_other)}
        if labels is not None and t.psl_weight > 0:
            n_k = n_clusters
            psl = prototype_scattering_loss(q[:b], k[b:], labels, n_k, t.temperature)
            psl = psl + prototype_scattering_loss(q[b:], k[:b], labels, n_k, t.temperature)
            terms["psl"] = t.psl_weight * psl / 2
        terms.update(self._extra_losses(p, k_other, b))
        return terms

    # ---------------------------------------------------------------- epochs and E-step
    def _train_epoch(
        self,
        ctx: StageContext,
        net: ProPosNet,
        opt: torch.optim.SGD,
        epoch: int,
        labels: torch.Tensor | None,
        gen: torch.Generator,
    ) -> dict[str, float]:
        """One shuffled epoch (1-based ``epoch``); returns the mean of every loss term."""
        o, t, x = self.cfg.optim, self.cfg.train, ctx.images()
        iters = math.ceil(ctx.data.n / o.batch_size)
        total_steps = t.epochs * iters
        base_lr = o.lr * o.batch_size / 256  # the silent scaling rule, made explicit (pitfall 2)
        sigma, use_psl = self.phase(epoch)
        sums: dict[str, torch.Tensor] = {}
        net.train()
        parts = enumerate(batches(ctx.data.n, o.batch_size, gen, ctx.device))
        kept = [(i, b) for i, b in parts if b.numel() >= 2 * D.world().size]  # BatchNorm
        shards = stream(x, (batch for _, batch in kept))  # needs two samples per process
        for (i, _), (batch, xb) in zip(kept, shards, strict=True):
            idx = D.shard(batch)
            step = (epoch - 1) * iters + i
            lr = learning_rate(step / iters, base_lr, t.warmup_epochs, t.epochs, o.eta_min)
            for group in opt.param_groups:
                group["lr"] = lr * group["lr_factor"]
            y = labels[idx] if use_psl and labels is not None else None
            terms = self._step_losses(net, xb, y, ctx.data.n_clusters, sigma, gen)
            loss = torch.stack(list(terms.values())).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            D.average_gradients(net)
            opt.step()
            net.ema_update(ema_momentum(step + 1, total_steps, t.ema, t.momentum_increase))
            for name, val in {"loss": loss, **terms}.items():
                sums[name] = sums.get(name, torch.zeros((), device=ctx.device)) + val.detach()
        means = {k: float(D.mean_over_processes(v)) / iters for k, v in sums.items()}
        if not all(np.isfinite(v) for v in means.values()):
            raise StageError(f"training diverged at epoch {epoch} ({means}); lower optim.lr")
        return means

    def phase(self, epoch: int) -> tuple[float, bool]:
        """``(sigma, PSL on)`` at 1-based ``epoch``: ``(0, False)`` during the warm-up."""
        t = self.cfg.train
        return (0.0, False) if epoch <= t.warmup_epochs else (t.sigma, t.psl_weight > 0)

    def _estep(self, ctx: StageContext, net: ProPosNet) -> tuple[torch.Tensor, KMeans]:
        """k-means on normalised target embeddings (Sec. 4.4): features ``[N, d]`` and the fit.

        Data-parallel, each process embeds its own rows and the embeddings are gathered; every
        process fits the same k-means and takes rank 0's labels and centres.
        """
        x, rows = ctx.images(), D.process_rows(ctx.data.n)
        chunks = range(rows.start, rows.stop, ESTEP_CHUNK)
        parts = [net.embed_target(x[i : min(i + ESTEP_CHUNK, rows.stop)]) for i in chunks]
        z = D.gather_rows(torch.cat(parts), ctx.data.n)
        k = self.cfg.kmeans
        km = KMeans(ctx.data.n_clusters, k.n_init, k.max_iter, seed=ctx.seed).fit(z)
        D.broadcast_(km.labels_, km.cluster_centers_)
        return z, km

    def _n_empty(self, labels: torch.Tensor, n_clusters: int) -> float:
        return float(n_clusters - nonempty_clusters(labels, n_clusters))

    # ---------------------------------------------------------------- stage hooks
    def pretrain(self, ctx: StageContext) -> PretrainOut:
        """Warm-up epochs ``1..W``: alignment only (sigma 0, no PSL) + method extras.

        The weights are a training checkpoint (:func:`checkpoint_state`): the three networks and
        the SGD momentum buffers, so refine resumes the optimiser where the warm-up left it.
        """
        torch.manual_seed(ctx.seed)
        net = D.prepare(self._net(ctx), ctx.device)
        opt, gen = self._optimizer(net), ctx.generator(1)
        w = self.cfg.train.warmup_epochs
        bar = Progress("warm-up", w)
        first: dict[str, float] = {}
        last: dict[str, float] = {}
        for epoch in range(1, w + 1):
            last = self._train_epoch(ctx, net, opt, epoch, None, gen)
            first = first or last
            ctx.curves.log(epoch, **last)
            bar.update(epoch, **last)
        metrics = {
            **{f"{k}_first": v for k, v in first.items()},
            **{f"{k}_last": v for k, v in last.items()},
        }
        return PretrainOut(checkpoint_state(net, opt), metrics)

    def cluster_init(self, ctx: StageContext) -> ClusterInitOut:
        """First E-step: k-means on the warm-up target embeddings."""
        net, _ = self._load(ctx)
        z, km = self._estep(ctx, net)
        metrics = {
            "inertia": km.inertia_,
            "empty_clusters": self._n_empty(km.labels_, ctx.data.n_clusters),
        }
        return ClusterInitOut(km.labels_, metrics, embeddings=z, centers=km.cluster_centers_)

    def refine(
        self, ctx: StageContext, init: ClusterInitOut, selection: SelectionOut | None
    ) -> RefineOut:
        """EM epochs ``W+1..E``: M-step with PSL on the pseudo-labels, then k-means again."""
        t, k_cfg = self.cfg.train, self.cfg.kmeans
        torch.manual_seed(ctx.seed + 1)
        net, opt = self._load(ctx)
        gen = ctx.generator(2)
        labels = torch.from_numpy(init.labels).to(ctx.device)
        bar, history, km, z = Progress("refine", t.epochs - t.warmup_epochs), [], None, None
        for epoch in range(t.warmup_epochs + 1, t.epochs + 1):
            row: dict[str, float] = self._train_epoch(ctx, net, opt, epoch, labels, gen)
            if (epoch - t.warmup_epochs) % k_cfg.every == 0 or epoch == t.epochs:
                z, km = self._estep(ctx, net)
                row["changed"] = 1.0 - cluster_acc(labels.cpu().numpy(), km.labels_.cpu().numpy())
                row["empty_clusters"] = self._n_empty(km.labels_, ctx.data.n_clusters)
                labels = km.labels_
            history.append({"epoch": epoch, **row})
            ctx.curves.log(epoch, **row)
            bar.update(epoch - t.warmup_epochs, **row)
        assert km is not None and z is not None
        labels, proba, centers, readout = self._readout(ctx, z, km)
        metrics = {f"{k}_last": v for k, v in history[-1].items() if k != "epoch"}
        return RefineOut(
            labels, metrics, proba=proba, embeddings=z, centers=centers, history=history,
            model=net.state_dict(), readout=readout,
        )  # fmt: skip

    def _readout(
        self, ctx: StageContext, z: torch.Tensor, km: KMeans
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Readout]:
        """Final ``labels`` ``[N]``, ``proba`` ``[N, K]``, ``centers`` ``[K, d]``, read-out."""
        k_cfg, k, t = self.cfg.kmeans, ctx.data.n_clusters, self.cfg.proba_temperature
        if k_cfg.readout == "merge":
            proba, readout = merge_readout(z, k, k_cfg.merge, ctx.seed)
            labels = proba.argmax(1)
            onehot = torch.nn.functional.one_hot(labels, k).to(z.dtype)
            centers = (onehot.T @ z) / onehot.sum(0).clamp_min(1.0)[:, None]
        else:
            d2 = squared_distances(z, km.cluster_centers_)  # [N, K]
            proba = torch.softmax(-d2 / (2 * t), dim=1)
            labels, centers = km.labels_, km.cluster_centers_
            readout = {"centers": centers, "variance": torch.tensor(t), "groups": torch.arange(k)}
        return labels, proba, centers, readout

    def predict(
        self, ctx: StageContext, init: ClusterInitOut, final: RefineOut | None
    ) -> PredictOut:
        """The refined target network's embedding, then the saved read-out (no re-training).

        The last E-step is k-means on the pool, so predict does not repeat it: the refined target
        network embeds the new images (eval mode, as the E-step) and
        :func:`~dcflow.methods.cc.soft_readout` assigns them to the nearest saved k-means centre
        (softmax over ``-d^2 / (2 T)``, as PROBA), or with ``readout: merge`` by the fit's fine
        centres, variance and fine -> cluster map. On the pool this is the fit's own rule on the
        fit's embeddings, hence its labels. PROBA is constructed from distances.
        """
        if final is None or final.model is None or final.readout is None:
            raise StageError("ProPos predict needs refine's model.pt and readout.npz")
        net = self._net(ctx)
        load_into(net, final.model, "refined ProPos networks")
        z = net.embed_target(ctx.images())
        proba = soft_readout(z, final.readout, ctx.data.n_clusters)
        return PredictOut(proba.argmax(1), proba=proba, embeddings=z)
