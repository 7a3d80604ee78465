"""RUC: robust re-training of a SCAN clustering (confident-sample selection + co-training).

S. Park, S. Han, S. Kim, D. Kim, S. Park, S. Hong, M. Cha, "Improving Unsupervised Image
Clustering With Robust Learning", CVPR 2021. Re-implemented from docs/specs/ruc.md.

Stages (SCAN's code is reused through inheritance, not copied):
    pretrain: SCAN's SimCLR; ``weights_owner = "scan"`` so either method reuses the other's cache.
    cluster-init (training): SCAN's neighbour mining, clustering step and self-labelling; hands on
        the self-labelled model (RUC's input ``o_model``), its probabilities, and the SimCLR
        projections as ``embeddings.npy`` (RUC's ``e_model`` space).
    confident-sample-selection: Confidence (``max p >= tau1``), Metric (kNN vote of the ``n_num``
        nearest samples agrees) or Hybrid (both) clean set (:mod:`dcflow.selection.ruc`).
    refine: two networks from the self-labelled model, co-trained with co-refinement and
        co-refurbishing (:mod:`dcflow.train.ruc`); the final assignment is the ensemble
        ``argmax(z1 + z2)`` with probabilities ``(p1 + p2) / 2`` (ECE, mean confidence).
    predict: the same ensemble of the two saved networks on new images (:meth:`RUC.predict`).

Upstream defects handled (docs/specs/ruc.md §7): raw cluster ids are kept (no GT renaming); pool
size, K and the ramp length follow the data and the config; ``n_num`` is an integer; empty clean or
unclean parts of a batch are skipped instead of producing NaN; one seeded generator drives all
randomness. The last epoch is reported (choosing the best epoch would need labels).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field

from dcflow.clustering.calibration import agreement_temperature, ensemble_proba
from dcflow.config import StrictModel
from dcflow.data.bank import Images
from dcflow.errors import StageError
from dcflow.handoff import (
    ClusterInitOut,
    PredictOut,
    RefineOut,
    Selection,
    SelectionOut,
    StateDict,
    to_numpy,
)
from dcflow.methods.base import StageContext
from dcflow.methods.registry import register_method
from dcflow.methods.scan import SCAN, SCANConfig, cluster_stats, head_size
from dcflow.models.cluster import ClusterModel, predict
from dcflow.progress import Progress
from dcflow.selection.ruc import select_clean
from dcflow.train import distributed as D
from dcflow.train.common import make_optimizer
from dcflow.train.ruc import CoState, RUCRefineConfig, ruc_pass
from dcflow.train.scan import predict_pool


class SelectionConfig(StrictModel):
    """Clean-set selection (RUC scripts: hybrid, tau1 0.99, n_num 100)."""

    strategy: Literal["hybrid", "confidence", "metric"] = "hybrid"
    tau1: float = Field(default=0.99, ge=0.0, le=1.0)
    n_num: int = Field(default=100, ge=1)


class RUCConfig(SCANConfig):
    """SCAN's sections (same pretrain key, so the SimCLR cache is shared) plus RUC's."""

    selection: SelectionConfig = Field(default_factory=SelectionConfig)
    ruc: RUCRefineConfig = Field(default_factory=RUCRefineConfig)


@register_method
class RUC(SCAN):
    """RUC (Park et al., CVPR 2021) on top of SCAN: hybrid selection + robust co-training."""

    name = "ruc"
    smoke: ClassVar[tuple[str, ...]] = tuple(
        "simclr.epochs=2 simclr.batch_size=64 scan.epochs=2 scan.batch_size=64 "
        "scan.heads=2 selflabel.epochs=1 ruc.epochs=1 ruc.batch_size=64 "
        "selection.tau1=0.5 ruc.calibrate=agreement".split()
    )
    paper = "Park et al., Improving unsupervised image clustering with robust learning, CVPR 2021"
    Config = RUCConfig
    stages = (
        "download-weights",
        "pretrain",
        "cluster-init",
        "confident-sample-selection",
        "refine",
        "evaluate",
    )
    training_stages = frozenset({"pretrain", "cluster-init", "refine"})
    # SimCLR, the SCAN + self-label cluster-init and the co-training refine
    data_parallel = frozenset({"pretrain", "cluster-init", "refine"})
    weights_owner = "scan"
    cfg: RUCConfig

    def cluster_init(self, ctx: StageContext) -> ClusterInitOut:
        """SCAN clustering step then self-labelling: RUC's input clustering."""
        step = self.scan_step(ctx)
        scan_conf = cluster_stats(F.softmax(predict(step.model, self._pool(ctx))[0][0], dim=1))
        model, sl_metrics = self.selflabel_step(ctx, step.model)
        a = self.assignment(ctx, model, embeddings=step.proj)
        metrics = {
            **step.metrics,
            **sl_metrics,
            "scan_mean_confidence": scan_conf["mean_confidence"],
            **a.stats,
        }
        return ClusterInitOut(
            a.labels, metrics, embeddings=a.embeddings, proba=a.proba, neighbors=step.neighbors,
            fragment_groups=step.groups, model=a.model,
        )  # fmt: skip

    def select(self, ctx: StageContext, init: ClusterInitOut) -> SelectionOut:
        """Clean / unclean split of the pool from the cluster-init assignment (Sec. 3.1)."""
        cfg = self.cfg.selection
        if init.proba is None or init.embeddings is None:
            raise StageError("RUC's selection needs the cluster-init probabilities and embeddings")
        proba = torch.from_numpy(init.proba)
        emb = F.normalize(torch.from_numpy(init.embeddings), dim=1)
        conf, labels = proba.max(1)
        n_num = min(cfg.n_num, ctx.data.n)
        sel = select_clean(conf, labels, emb, ctx.data.n_clusters, cfg.strategy, cfg.tau1, n_num)
        clean = sel.clean.numpy()
        extras = {
            "clean": clean,
            "conf_mask": sel.conf_mask.numpy(),
            "metric_mask": sel.metric_mask.numpy(),
            "knn_label": to_numpy(sel.knn_label, np.int64),
            "pseudo_labels": to_numpy(labels, np.int64),
            "confidence": to_numpy(conf, np.float32),
            "weights": clean.astype(np.float32),
            "threshold": np.float32(cfg.tau1),
            "t": np.int64(0),
        }
        metrics = {
            "n_clean": float(sel.clean.sum()),
            "clean_fraction": float(sel.clean.float().mean()),
            "conf_fraction": float(sel.conf_mask.float().mean()),
            "metric_fraction": float(sel.metric_mask.float().mean()),
            "knn_ties": float(sel.ties),
        }
        return SelectionOut(Selection(np.flatnonzero(clean), extras), metrics)

    def _nets(self, ctx: StageContext, init: ClusterInitOut) -> tuple[ClusterModel, ClusterModel]:
        nets = []
        for _ in range(2):
            net = self._load_init(ctx, init.model)
            if self.cfg.ruc.fresh_head:
                net.reset_heads(1)
            nets.append(net)
        return nets[0], nets[1]

    def refine(
        self, ctx: StageContext, init: ClusterInitOut, selection: SelectionOut | None
    ) -> RefineOut:
        """Co-training of two networks for ``ruc.epochs`` epochs (Sec. 3.2); last epoch kept."""
        cfg, x = self.cfg.ruc, self._pool(ctx)
        if selection is None:
            raise StageError("RUC's refine needs the confident-sample selection")
        sel = selection.selected
        state = CoState(
            labels=torch.from_numpy(sel["pseudo_labels"]).to(ctx.device),
            clean=torch.from_numpy(sel["clean"]).to(ctx.device),
        )
        start = state.labels.clone()
        net1, net2 = (D.prepare(n, ctx.device) for n in self._nets(ctx, init))
        nets = (net1, net2)
        opts = [
            make_optimizer(
                n.parameters(), "sgd", cfg.lr, cfg.weight_decay, cfg.momentum, cfg.nesterov
            )
            for n in nets
        ]
        conf = [torch.zeros(ctx.data.n, device=ctx.device) for _ in nets]
        gen, bar = ctx.generator(4), Progress("ruc", cfg.epochs)
        history: list[dict[str, Any]] = []
        for epoch in range(cfg.epochs):
            row: dict[str, float] = {}
            for a in (0, 1):
                conf[a], m = ruc_pass(
                    nets[a], nets[1 - a], opts[a], x, state, conf[1 - a], epoch, cfg, gen
                )
                row.update({f"net{a + 1}_{k}": v for k, v in m.items()})
            proba, labels = self._ensemble(nets, x)
            row.update(
                clean_fraction=float(state.clean.float().mean()),
                refurbished=float(state.refurbished),
                mean_confidence=float(proba.max(1).values.mean()),
                changed_vs_input=float((labels != start).float().mean()),
            )
            history.append({"epoch": epoch + 1, **row})
            ctx.curves.log(epoch + 1, **row)
            bar.update(epoch + 1, clean=row["clean_fraction"], conf=row["mean_confidence"])
        return self._result(nets, x, state, history)

    def predict(
        self, ctx: StageContext, init: ClusterInitOut, final: RefineOut | None
    ) -> PredictOut:
        """Assign new images with RUC's two co-trained networks (Sec. 3.2), no re-training.

        Refine saves both networks in one state dict (``net1.*``, ``net2.*``; each carries the
        pretraining pool's ``mean``/``std`` buffers, the fit's input normalisation). Predict
        loads them and applies the fit's own read-out, :meth:`_ensemble`: labels
        ``argmax(z1 + z2)`` of the summed logits, ``proba`` ``(p1 + p2) / 2`` (the networks' own
        softmax probabilities, averaged; not constructed), both in eval mode; ``embeddings`` are
        net 1's backbone features, as in refine. On the fitted pool this is the same computation
        on the same weights, so it reproduces the run's final labels. The networks are sized from
        the saved heads (the run's K).
        """
        state = final.model if final is not None else None
        parts = [_net(state, i) for i in (1, 2)]
        net1, net2 = (
            self._load_init(ctx, part, f"refined network {i}", head_size(part))
            for i, part in enumerate(parts, 1)
        )
        x = self._pool(ctx)
        readout = final.readout if final is not None and final.readout is not None else {}
        temperature = float(readout.get("temperature", 1.0))
        proba, labels = self._ensemble((net1, net2), x, temperature)
        feats = predict(net1, x)[1]
        return PredictOut(labels, cluster_stats(proba), proba=proba, embeddings=feats)

    @staticmethod
    def _ensemble(
        nets: tuple[ClusterModel, ClusterModel], x: Images, temperature: float = 1.0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Eval-mode ensemble: probabilities ``(p1 + p2) / 2`` and labels ``argmax(z1 + z2)``.

        ``p_i = softmax(z_i / T)``; ``T`` (1 unless ``ruc.calibrate``) never changes a label.
        """
        z1, z2 = predict_pool(nets[0], x)[0][0], predict_pool(nets[1], x)[0][0]
        return ensemble_proba(z1, z2, temperature), (z1 + z2).argmax(1)

    @staticmethod
    def _temperature(nets: tuple[ClusterModel, ClusterModel], x: Images) -> float:
        """Label-free temperature (:func:`~dcflow.clustering.calibration.agreement_temperature`)."""
        return agreement_temperature(predict(nets[0], x)[0][0], predict(nets[1], x)[0][0])

    def _result(
        self,
        nets: tuple[ClusterModel, ClusterModel],
        x: Images,
        state: CoState,
        history: list[dict[str, Any]],
    ) -> RefineOut:
        """Ensemble assignment, net 1's features, the final clean set and both networks.

        With ``ruc.calibrate = agreement`` the probabilities are temperature-scaled without labels
        and ``T`` is saved in the read-out, so predict applies the same ``T``.
        """
        calibrated = self.cfg.ruc.calibrate == "agreement"
        temperature = self._temperature(nets, x) if calibrated else 1.0
        proba, labels = self._ensemble(nets, x, temperature)
        feats = predict(nets[0], x)[1]
        clean = state.clean.cpu().numpy()
        selected = Selection(
            np.flatnonzero(clean),
            {
                "clean": clean,
                "pseudo_labels": to_numpy(state.labels, np.int64),
                "weights": clean.astype(np.float32),
                "threshold": np.float32(self.cfg.ruc.tau2_at(self.cfg.ruc.epochs - 1)),
                "t": np.int64(self.cfg.ruc.epochs),
            },
        )
        model = {
            f"net{i + 1}.{k}": v for i, n in enumerate(nets) for k, v in n.state_dict().items()
        }
        metrics = {
            **cluster_stats(proba),
            "clean_fraction": float(state.clean.float().mean()),
            "refurbished": float(state.refurbished),
            "temperature": temperature,
        }
        readout = {"temperature": np.float32(temperature)} if calibrated else None
        return RefineOut(
            labels, metrics, proba=proba, embeddings=feats, selected=selected,
            history=history, model=model, readout=readout,
        )  # fmt: skip


def _net(state: StateDict | None, i: int) -> StateDict | None:
    """Network ``i``'s part (keys ``net{i}.*``, prefix removed) of refine's two-network state."""
    if state is None:
        return None
    prefix = f"net{i}."
    return {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
