"""RUC: robust re-training of a SCAN clustering (confident-sample selection + co-training).

S. Park, S. Han, S. Kim, D. Kim, S. Park, S. Hong, M. Cha, "Improving Unsupervised Image
Clustering With Robust Learning", CVPR 2021. Re-implemented from ``shared/methods/ruc.md``.

Stages (SCAN's code is reused through inheritance, not copied):
    pretrain: SCAN's SimCLR; ``weights_owner = "scan"`` so either method reuses the other's cache.
    cluster-init (training): SCAN's neighbour mining, clustering step and self-labelling; writes
        the self-labelled model (RUC's input ``o_model``), its probabilities, and the SimCLR
        projections as ``embeddings.npy`` (RUC's ``e_model`` space).
    confident-sample-selection: Confidence (``max p >= tau1``), Metric (kNN vote of the ``n_num``
        nearest samples agrees) or Hybrid (both) clean set (:mod:`dcflow.selection.ruc`).
    refine: two networks from the self-labelled model, co-trained with co-refinement and
        co-refurbishing (:mod:`dcflow.train.ruc`); the final assignment is the ensemble
        ``argmax(z1 + z2)`` with probabilities ``(p1 + p2) / 2`` (ECE, mean confidence).

Upstream defects handled (spec section 7): raw cluster ids are kept (no GT renaming); pool size,
K and the ramp length follow the data and the config; ``n_num`` is an integer; empty clean or
unclean parts of a batch are skipped instead of producing NaN; one seeded generator drives all
randomness. The last epoch is reported (choosing the best epoch would need labels).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field

from dcflow import artifacts as art
from dcflow.config import StrictModel
from dcflow.methods.base import StageContext
from dcflow.methods.scan import SCAN, SCANConfig, cluster_stats
from dcflow.models.cluster import ClusterModel, predict
from dcflow.progress import Progress
from dcflow.registry import register_method
from dcflow.selection.ruc import select_clean
from dcflow.train.common import make_optimizer
from dcflow.train.ruc import CoState, RUCRefineConfig, ruc_pass


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
    weights_owner = "scan"
    cfg: RUCConfig

    def cluster_init(self, ctx: StageContext) -> dict[str, float]:
        """SCAN clustering step then self-labelling: RUC's input clustering."""
        model, proj, scan_metrics = self.scan_step(ctx)
        scan_conf = cluster_stats(F.softmax(predict(model, self._pool(ctx))[0][0], dim=1))
        model, sl_metrics = self.selflabel_step(ctx, model)
        out = self.write_assignment(ctx, model, embeddings=proj)
        return {
            **scan_metrics,
            **sl_metrics,
            "scan_mean_confidence": scan_conf["mean_confidence"],
            **out,
        }

    def select(self, ctx: StageContext) -> dict[str, float]:
        """Clean / unclean split of the pool from the cluster-init assignment (Sec. 3.1)."""
        cfg, init = self.cfg.selection, ctx.inputs["cluster-init"]
        proba = torch.from_numpy(art.load_npy(init, art.PROBA))
        emb = F.normalize(torch.from_numpy(art.load_npy(init, art.EMBEDDINGS)), dim=1)
        conf, labels = proba.max(1)
        n_num = min(cfg.n_num, ctx.data.n)
        sel = select_clean(conf, labels, emb, ctx.data.n_clusters, cfg.strategy, cfg.tau1, n_num)
        clean = sel.clean
        art.save_npz(
            ctx.out,
            art.SELECTED,
            clean=clean.numpy(),
            conf_mask=sel.conf_mask.numpy(),
            metric_mask=sel.metric_mask.numpy(),
            knn_label=sel.knn_label.numpy().astype(np.int64),
            pseudo_labels=labels.numpy().astype(np.int64),
            confidence=conf.numpy().astype(np.float32),
            indices=np.flatnonzero(clean.numpy()).astype(np.int64),
            weights=clean.numpy().astype(np.float32),
            threshold=np.float32(cfg.tau1),
            t=np.int64(0),
        )
        return {
            "n_clean": float(clean.sum()),
            "clean_fraction": float(clean.float().mean()),
            "conf_fraction": float(sel.conf_mask.float().mean()),
            "metric_fraction": float(sel.metric_mask.float().mean()),
            "knn_ties": float(sel.ties),
        }

    def _nets(self, ctx: StageContext) -> tuple[ClusterModel, ClusterModel]:
        nets = []
        for _ in range(2):
            net = self._load(ctx, ctx.inputs["cluster-init"] / art.MODEL, 1, strict=True)
            if self.cfg.ruc.fresh_head:
                net.reset_heads(1)
            nets.append(net)
        return nets[0], nets[1]

    def refine(self, ctx: StageContext) -> dict[str, float]:
        """Co-training of two networks for ``ruc.epochs`` epochs (Sec. 3.2); last epoch kept."""
        cfg, x = self.cfg.ruc, self._pool(ctx)
        sel = art.load_npz(ctx.inputs["confident-sample-selection"], art.SELECTED)
        state = CoState(
            labels=torch.from_numpy(sel["pseudo_labels"]).to(ctx.device),
            clean=torch.from_numpy(sel["clean"]).to(ctx.device),
        )
        start = state.labels.clone()
        nets = self._nets(ctx)
        opts = [
            make_optimizer(
                n.parameters(), "sgd", cfg.lr, cfg.weight_decay, cfg.momentum, cfg.nesterov
            )
            for n in nets
        ]
        conf = [torch.zeros(ctx.data.n, device=ctx.device) for _ in nets]
        gen, bar, history = ctx.generator(4), Progress("ruc", cfg.epochs), []
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
        return self._save_refine(ctx, nets, x, state, history)

    @staticmethod
    def _ensemble(
        nets: tuple[ClusterModel, ClusterModel], x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Eval-mode ensemble: probabilities ``(p1 + p2) / 2`` and labels ``argmax(z1 + z2)``."""
        z1, z2 = predict(nets[0], x)[0][0], predict(nets[1], x)[0][0]
        proba = (F.softmax(z1, dim=1) + F.softmax(z2, dim=1)) / 2
        return proba, (z1 + z2).argmax(1)

    def _save_refine(
        self,
        ctx: StageContext,
        nets: tuple[ClusterModel, ClusterModel],
        x: torch.Tensor,
        state: CoState,
        history: list[dict[str, float]],
    ) -> dict[str, float]:
        proba, labels = self._ensemble(nets, x)
        feats = predict(nets[0], x)[1]
        art.save_npy(ctx.out, art.LABELS, labels.cpu().numpy().astype(np.int64))
        art.save_npy(ctx.out, art.PROBA, proba.cpu().numpy().astype(np.float32))
        art.save_npy(ctx.out, art.EMBEDDINGS, feats.cpu().numpy().astype(np.float32))
        clean = state.clean.cpu().numpy()
        art.save_npz(
            ctx.out,
            art.SELECTED,
            clean=clean,
            pseudo_labels=state.labels.cpu().numpy().astype(np.int64),
            indices=np.flatnonzero(clean).astype(np.int64),
            weights=clean.astype(np.float32),
            threshold=np.float32(self.cfg.ruc.tau2_at(self.cfg.ruc.epochs - 1)),
            t=np.int64(self.cfg.ruc.epochs),
        )
        art.append_jsonl(ctx.out, art.HISTORY, history)
        state_dict = {
            f"net{i + 1}.{k}": v for i, n in enumerate(nets) for k, v in n.state_dict().items()
        }
        with art.atomic_path(ctx.out / art.MODEL) as tmp:
            torch.save(state_dict, tmp)
        stats = cluster_stats(proba)
        return {
            **stats,
            "clean_fraction": float(state.clean.float().mean()),
            "refurbished": float(state.refurbished),
        }
