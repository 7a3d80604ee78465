"""SCAN: SimCLR pretraining, neighbour mining, the SCAN clustering loss, then self-labelling.

W. Van Gansbeke, S. Vandenhende, S. Georgoulis, M. Proesmans, L. Van Gool, "SCAN: Learning to
Classify Images without Labels", ECCV 2020. Re-implemented from docs/specs/ruc.md.

Stages:
    pretrain: SimCLR (NT-Xent on two random views) of backbone + contrastive head
        (:mod:`dcflow.train.simclr`); the weights are cached in the weights store.
    cluster-init (training): mine the ``k`` nearest neighbours of every image in the SimCLR
        projection space (artifact ``neighbors.npy``), then train ``heads`` cluster heads with the
        SCAN loss and keep the lowest validation-loss (epoch, head) (:mod:`dcflow.train.scan`).
    refine: self-labelling on the confident samples with strong views
        (:mod:`dcflow.train.selflabel`); falls back to the SCAN-step model when self-labelling
        empties a cluster (docs/specs/ruc.md pitfall 3).
    predict: the refined model's head on new images (:meth:`SCAN.predict`).

Options beyond the paper (off unless a preset sets them): ``scan.overcluster > 1`` trains
``round(overcluster * K)`` clusters and merges them on the mined-neighbour graph before
self-labelling (:mod:`dcflow.train.overcluster`); the views' ``stroke`` jitters stroke width
(:func:`dcflow.transforms.stroke.stroke_blend`; the ``usps`` presets use it).

Upstream defects handled (docs/specs/ruc.md §7): batches without a confident sample are skipped and
counted; ``drop_last`` never leaves an epoch with no step; the neighbour search is exact chunked
``torch.topk`` with self forced to column 0; every random draw comes from seeded generators; the
input normalisation travels inside the checkpoint. Small-data runs are transductive (train and
score on the same pool) and the validation loss uses the pool, as no labels are used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from pydantic import Field

from dcflow.clustering.knn_mining import mine_neighbors
from dcflow.clustering.merge import fine_count, merged_proba
from dcflow.config import StrictModel
from dcflow.data.bank import ImageBank
from dcflow.errors import WeightsError
from dcflow.handoff import (
    ClusterInitOut,
    PredictOut,
    PretrainOut,
    RefineOut,
    SelectionOut,
    StateDict,
)
from dcflow.losses.scan import entropy
from dcflow.methods.base import Method, StageContext
from dcflow.methods.registry import register_method
from dcflow.models.cluster import ClusterModel, ModelConfig, build_model, channel_stats, predict
from dcflow.models.state import load_into
from dcflow.train import distributed as D
from dcflow.train.overcluster import fit_head, merge_fragments
from dcflow.train.scan import ScanConfig, predict_pool, scan_train
from dcflow.train.selflabel import SelfLabelConfig, selflabel_train
from dcflow.train.simclr import SimCLRConfig, simclr_train


class SCANConfig(StrictModel):
    """All SCAN hyper-parameters; defaults follow SCAN's CIFAR-10 configuration files."""

    model: ModelConfig = Field(default_factory=ModelConfig)
    simclr: SimCLRConfig = Field(default_factory=SimCLRConfig)
    scan: ScanConfig = Field(default_factory=ScanConfig)
    selflabel: SelfLabelConfig = Field(default_factory=SelfLabelConfig)


def cluster_stats(proba: torch.Tensor) -> dict[str, float]:
    """Label-free summary of soft assignments ``[N, K]``: confidence, cluster sizes."""
    labels = proba.argmax(1)
    sizes = torch.bincount(labels, minlength=proba.shape[1]).float()
    return {
        "mean_confidence": float(proba.max(1).values.mean()),
        "nonempty_clusters": float((sizes > 0).sum()),
        "cluster_size_entropy": float(entropy(sizes / sizes.sum())),
    }


def head_size(state: StateDict | None) -> int:
    """K of a saved single-head model (0 when unknown): the run's K, whatever the new data say."""
    head = (state or {}).get("cluster_head.0.weight")
    return 0 if head is None else int(head.shape[0])


@dataclass
class ScanStep:
    """What the SCAN clustering step hands on.

    Attributes:
        model: the K-way single-head network (merged when over-clustering).
        proj: ``[N, p]`` SimCLR projections the neighbours were mined in.
        neighbors: ``[N, k+1]`` mined neighbours, self first.
        groups: ``[K']`` merged group of every over-clustered head (``None`` without it).
        metrics: training (and merge) metrics.
    """

    model: ClusterModel
    proj: torch.Tensor
    neighbors: torch.Tensor
    groups: torch.Tensor | None
    metrics: dict[str, float]


class Assignment(NamedTuple):
    """A cluster model's assignment of the pool, as the stages hand it on.

    Attributes:
        labels: ``[N]`` argmax of ``proba``.
        proba: ``[N, K]`` softmax of the (single) head.
        embeddings: ``[N, d]`` backbone features, or the codes the caller chose.
        model: the network's state dict.
        stats: :func:`cluster_stats` of ``proba``.
    """

    labels: torch.Tensor
    proba: torch.Tensor
    embeddings: torch.Tensor
    model: StateDict
    stats: dict[str, float]


@register_method
class SCAN(Method):
    """SCAN (Van Gansbeke et al., ECCV 2020): SimCLR -> SCAN loss on neighbours -> self-label."""

    name = "scan"
    smoke: ClassVar[tuple[str, ...]] = tuple(
        "simclr.epochs=2 simclr.batch_size=64 scan.epochs=2 scan.batch_size=64 "
        "scan.heads=2 selflabel.epochs=1".split()
    )
    paper = "Van Gansbeke et al., SCAN: Learning to classify images without labels, ECCV 2020"
    Config = SCANConfig
    stages: ClassVar[tuple[str, ...]] = (
        "download-weights",
        "pretrain",
        "cluster-init",
        "refine",
        "evaluate",
    )
    training_stages = frozenset({"pretrain", "cluster-init", "refine"})
    data_parallel = frozenset({"pretrain", "cluster-init", "refine"})  # SimCLR, SCAN, self-label
    pretrain_sections = ("model", "simclr")
    cfg: SCANConfig

    def _pool(self, ctx: StageContext) -> ImageBank:
        return ctx.images()

    def _model(self, ctx: StageContext, n_heads: int, n_clusters: int = 0) -> ClusterModel:
        k = n_clusters or ctx.data.n_clusters
        return build_model(self.cfg.model, ctx.data.image_shape, k, n_heads).to(ctx.device)

    def _load(
        self, ctx: StageContext, path: Path | None, n_heads: int, strict: bool, n_clusters: int = 0
    ) -> ClusterModel:
        """Build a model and load the weights file ``path`` (``strict=False``: heads may differ)."""
        model = self._model(ctx, n_heads, n_clusters)
        missing, unexpected = load_into(model, path, "model", strict)
        bad = [k for k in [*missing, *unexpected] if "cluster_head" not in k]
        if bad:
            raise WeightsError(f"weights {path} do not fit the configured model ({bad[0]})")
        return model

    def _load_init(
        self,
        ctx: StageContext,
        state: StateDict | None,
        what: str = "cluster-init model",
        n_clusters: int = 0,
    ) -> ClusterModel:
        """Build the K-way single-head model and load the state dict ``what`` strictly.

        The state dict carries the input normalisation (the pretraining pool's channel
        statistics, buffers ``mean``/``std``), so the loaded model normalises as the fit did.
        ``n_clusters`` overrides ``ctx.data.n_clusters`` (predict: the saved head's K).
        """
        model = self._model(ctx, 1, n_clusters)
        load_into(
            model, state, what,
            needed=f"this stage needs the {what}",
            misfit=f"the {what} does not fit the configured model",
        )  # fmt: skip
        return model

    def pretrain(self, ctx: StageContext) -> PretrainOut:
        """SimCLR on the pool; the input normalisation is the pool's channel statistics."""
        x = self._pool(ctx)
        mean, std = channel_stats(x)
        model = build_model(
            self.cfg.model, ctx.data.image_shape, ctx.data.n_clusters, 0, mean, std
        ).to(ctx.device)
        metrics = simclr_train(model, x, self.cfg.simclr, ctx.generator(1), ctx.curves)
        return PretrainOut(model.state_dict(), metrics)

    def scan_step(self, ctx: StageContext) -> ScanStep:
        """Mine neighbours, train the SCAN heads (and merge over-clusters when configured)."""
        cfg, x = self.cfg.scan, self._pool(ctx)
        k = ctx.data.n_clusters
        k_fine = fine_count(k, cfg.overcluster, ctx.data.n)
        model = self._load(ctx, ctx.weights, cfg.heads, strict=False, n_clusters=k_fine)
        proj = predict_pool(model, x)[2]
        neighbors = mine_neighbors(proj, min(cfg.neighbors, ctx.data.n - 1))
        D.broadcast_(neighbors)  # every process trains on rank 0's graph
        metrics = scan_train(model, x, neighbors, cfg, ctx.generator(2), ctx.curves)
        groups = None
        if k_fine > k:
            model, groups, merge_metrics = self._merge_overclusters(ctx, model, neighbors[:, 1:])
            metrics.update(merge_metrics)
        return ScanStep(model, proj, neighbors, groups, metrics)

    def _merge_overclusters(
        self, ctx: StageContext, fine_model: ClusterModel, neighbors: torch.Tensor
    ) -> tuple[ClusterModel, torch.Tensor, dict[str, float]]:
        """K'-way SCAN model -> K-way model, ``[K']`` groups (:mod:`dcflow.train.overcluster`)."""
        k = ctx.data.n_clusters
        logits, feats, _ = predict(fine_model, self._pool(ctx))
        fine = F.softmax(logits[0], dim=1)
        groups = merge_fragments(fine, neighbors, k)
        target = merged_proba(fine, groups, k)
        head, agree = fit_head(feats, target)
        model = self._model(ctx, 1)
        state = {k_: v for k_, v in fine_model.state_dict().items() if "cluster_head" not in k_}
        model.load_state_dict(state, strict=False)
        model.cluster_head[0].load_state_dict(head.state_dict())
        metrics = {
            "overcluster_fragments": float(fine.shape[1]),
            "overcluster_head_agreement": agree,
        }
        return model, groups, metrics

    def selflabel_step(
        self, ctx: StageContext, model: ClusterModel
    ) -> tuple[ClusterModel, dict[str, float]]:
        """Self-label a copy of ``model``; keep ``model`` if a cluster empties (pitfall 3)."""
        x = self._pool(ctx)
        before = cluster_stats(F.softmax(predict_pool(model, x)[0][0], dim=1))
        tuned = self._model(ctx, 1)
        tuned.load_state_dict(model.state_dict())
        metrics = selflabel_train(tuned, x, self.cfg.selflabel, ctx.generator(3), ctx.curves)
        after = cluster_stats(F.softmax(predict_pool(tuned, x)[0][0], dim=1))
        fallback = after["nonempty_clusters"] < before["nonempty_clusters"]
        return (model if fallback else tuned), {**metrics, "selflabel_fallback": float(fallback)}

    def assignment(
        self, ctx: StageContext, model: ClusterModel, embeddings: torch.Tensor | None = None
    ) -> Assignment:
        """``model``'s assignment of the pool (embeddings: backbone features unless given)."""
        logits, feats, _ = predict(model, self._pool(ctx))
        proba = F.softmax(logits[0], dim=1)
        emb = feats if embeddings is None else embeddings
        return Assignment(proba.argmax(1), proba, emb, model.state_dict(), cluster_stats(proba))

    def cluster_init(self, ctx: StageContext) -> ClusterInitOut:
        """Neighbour mining + SCAN clustering step (Sec. 3.1-3.2)."""
        step = self.scan_step(ctx)
        a = self.assignment(ctx, step.model)
        return ClusterInitOut(
            a.labels, {**step.metrics, **a.stats}, embeddings=a.embeddings, proba=a.proba,
            neighbors=step.neighbors, fragment_groups=step.groups, model=a.model,
        )  # fmt: skip

    def refine(
        self, ctx: StageContext, init: ClusterInitOut, selection: SelectionOut | None
    ) -> RefineOut:
        """Self-labelling (Sec. 3.3) from the cluster-init model."""
        model = self._load_init(ctx, init.model)
        model, metrics = self.selflabel_step(ctx, model)
        a = self.assignment(ctx, model)
        return RefineOut(
            a.labels, {**metrics, **a.stats}, proba=a.proba, embeddings=a.embeddings, model=a.model
        )

    def predict(
        self, ctx: StageContext, init: ClusterInitOut, final: RefineOut | None
    ) -> PredictOut:
        """Assign new images with the self-labelled network (SCAN, Sec. 3.3), no re-training.

        The run's final assignment is the argmax of the refined model's single K-way head (with
        ``scan.overcluster > 1`` that head is already the K-way head fitted to the merged
        fragments, :mod:`dcflow.train.overcluster`, so no fragment map is needed). Predict loads
        that state dict (its ``mean``/``std`` buffers are the pretraining pool's statistics, the
        fit's input normalisation) and makes the same eval-mode pass as :meth:`assignment`; on
        the fitted pool it therefore reproduces the run's labels. ``proba`` is the head's softmax
        (the model's own probabilities), ``embeddings`` the backbone features. The network is
        sized from the saved head, so K is the run's even where ``ctx.data.n_clusters`` differs.
        """
        state = final.model if final is not None else None
        model = self._load_init(ctx, state, "refined model", head_size(state))
        a = self.assignment(ctx, model)
        return PredictOut(a.labels, a.stats, proba=a.proba, embeddings=a.embeddings)
