"""CC: Contrastive Clustering (Li, Hu, Liu, Peng, Zhou, Peng, AAAI 2021).

The network and initial clustering that ULDC (:mod:`dcflow.methods.uldc`) refines; re-implemented
from docs/specs/uldc.md §4.1-4.2 and the CC paper.

Stages:
    pretrain: two random views per image; ``L = L_ins + L_clu`` (Eq. 3 and 6-7: NT-Xent over
        the 2B instance embeddings with tau_I, NT-Xent over the 2K cluster columns with tau_C,
        plus ``ln K - H(p_bar)`` per view); Adam. Weights go to the weights store, keyed by
        ``cc`` so ``uldc`` reuses them.
    cluster-init: argmax of the softmax cluster head on the test view (resize only) of every
        image (no k-means): LABELS, PROBA (-> ECE) and the instance EMBEDDINGS.
    predict: the same forward pass on new images; the head is inductive, so on the pool it
        reproduces cluster-init exactly.

Also here: the over-cluster + merge read-out that ULDC (``refine.assign: merge``) and ProPos /
HaDis (``kmeans.readout: merge``) offer instead of a head or plain k-means, returning the arrays
(``readout.npz``) with which :func:`soft_readout` assigns new embeddings the same way.

Defaults are the paper's (ResNet-34 at 224 px, batch 256, Adam 3e-4, 1000 epochs, tau_I 0.5,
tau_C 1.0); presets scale them down for the small grey datasets.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field

from dcflow.clustering import KMeans, squared_distances
from dcflow.clustering.merge import (
    MergeConfig,
    fine_count,
    merge_fine,
    merged_proba,
    nearest_neighbors,
)
from dcflow.config import StrictModel
from dcflow.data.bank import ImageBank, Images, stream
from dcflow.errors import StageError
from dcflow.handoff import ClusterInitOut, PredictOut, PretrainOut, RefineOut
from dcflow.losses.cc import cluster_contrastive_loss, instance_contrastive_loss
from dcflow.methods.base import Method, StageContext
from dcflow.methods.registry import register_method
from dcflow.models.cc_backbones import Arch, CCNetwork, build_cc_network
from dcflow.models.state import load_into
from dcflow.progress import Progress
from dcflow.train import distributed as D
from dcflow.train.common import batches
from dcflow.transforms.presets import CCView
from dcflow.transforms.warp import resize

INFER_BATCH = 256


class ModelConfig(StrictModel):
    """Backbone and projectors (CC: ResNet-34, 224 px, heads 512 -> 128 and 512 -> K)."""

    arch: Arch = "resnet34"
    widths: list[int] = Field(default_factory=lambda: [256, 256], min_length=1)
    stem: Literal["imagenet", "cifar"] = "imagenet"
    image_size: int | None = Field(default=224, ge=4, description="resize side; null = native")
    instance_dim: int = Field(default=128, ge=2)
    head_hidden: int = Field(default=512, ge=1)


class AugmentConfig(StrictModel):
    """View augmentation (CC: SimCLR-style crop, flip, jitter s=0.5, grayscale; no blur)."""

    crop_area: tuple[float, float] | None = (0.08, 1.0)
    rotation: float = Field(default=0.0, ge=0.0, le=180.0)
    shift: float = Field(default=0.0, ge=0.0, lt=0.5)
    zoom: tuple[float, float] = (1.0, 1.0)
    hflip: float = Field(default=0.5, ge=0.0, le=1.0)
    jitter: float = Field(default=0.5, ge=0.0)
    jitter_p: float = Field(default=0.8, ge=0.0, le=1.0)
    grayscale_p: float = Field(default=0.2, ge=0.0, le=1.0)
    blur_p: float = Field(default=0.0, ge=0.0, le=1.0)
    blur_kernel: int = Field(default=23, ge=1)
    noise: float = Field(default=0.0, ge=0.0)


class PretrainConfig(StrictModel):
    """CC training (paper: batch 256, Adam 3e-4, 1000 epochs, tau_I 0.5, tau_C 1.0)."""

    epochs: int = Field(default=1000, ge=1)
    batch_size: int = Field(default=256, ge=2)
    lr: float = Field(default=3e-4, gt=0.0)
    weight_decay: float = Field(default=0.0, ge=0.0)
    instance_temperature: float = Field(default=0.5, gt=0.0)
    cluster_temperature: float = Field(default=1.0, gt=0.0)
    entropy_weight: float = Field(default=1.0, ge=0.0)


class CCConfig(StrictModel):
    """All CC hyper-parameters."""

    model: ModelConfig = Field(default_factory=ModelConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    pretrain: PretrainConfig = Field(default_factory=PretrainConfig)


@register_method
class CC(Method):
    """Contrastive Clustering (Li et al., AAAI 2021): instance + cluster contrast, head argmax."""

    name = "cc"
    smoke: ClassVar[tuple[str, ...]] = tuple(
        "model.arch=mlp model.widths=[32] model.image_size=null model.instance_dim=16 "
        "model.head_hidden=32 augment.crop_area=null augment.jitter=0 "
        "augment.grayscale_p=0 augment.hflip=0 pretrain.epochs=2 pretrain.batch_size=64".split()
    )
    paper = "Li et al., Contrastive clustering, AAAI 2021"
    Config = CCConfig
    stages: ClassVar[tuple[str, ...]] = ("download-weights", "pretrain", "cluster-init", "evaluate")
    training_stages = frozenset({"pretrain"})
    data_parallel = frozenset({"pretrain"})
    pretrain_sections = ("model", "augment", "pretrain")
    pretrain_uses_k = True  # the cluster head (K outputs) is trained in pretrain
    cfg: CCConfig

    def _input_shape(self, ctx: StageContext) -> tuple[int, int, int]:
        c, h, w = ctx.data.image_shape
        size = self.cfg.model.image_size
        return (c, size, size) if size else (c, h, w)

    def network(self, ctx: StageContext) -> CCNetwork:
        """A freshly initialised CC network for this run's data, on ``ctx.device``."""
        m = self.cfg.model
        return build_cc_network(
            m.arch,
            self._input_shape(ctx),
            ctx.data.n_clusters,
            m.widths,
            m.instance_dim,
            m.head_hidden,
            m.stem,
        ).to(ctx.device)

    def load_network(self, ctx: StageContext) -> CCNetwork:
        """The CC network with the verified pretrained weights ``ctx.weights``."""
        model = self.network(ctx)
        load_into(model, ctx.weights, "CC network")
        return model

    def views(self) -> CCView:
        """The training view augmentation from ``augment`` and ``model.image_size``."""
        a = self.cfg.augment
        return CCView(size=self.cfg.model.image_size, **a.model_dump())

    def images(self, ctx: StageContext) -> ImageBank:
        """All pool images ``[N, C, H, W]`` on the device (one tensor, no loader)."""
        return ctx.images()

    @torch.no_grad()
    def infer(
        self, model: CCNetwork, x: Images, rows: slice | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Eval-mode ``z`` ``[R, m]`` and ``p`` ``[R, K]`` on test views (resize only).

        Args:
            model: the network (left in the training mode it had).
            x: the pool.
            rows: the contiguous rows to embed (default: all ``N``).
        """
        start, stop = (0, x.shape[0]) if rows is None else (rows.start, rows.stop)
        was_training = model.training
        model.eval()
        size = self.cfg.model.image_size
        outs = [
            model(resize(x[i : min(i + INFER_BATCH, stop)], size))
            for i in range(start, stop, INFER_BATCH)
        ]
        model.train(was_training)
        if not outs:
            raise StageError("no images to embed")
        return torch.cat([o[0] for o in outs]), torch.cat([o[1] for o in outs])

    def infer_pool(self, model: CCNetwork, x: Images) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`infer` of the whole pool, each process embedding its own rows.

        Under data parallelism every process embeds :func:`~dcflow.train.distributed.process_rows`
        and the rows are gathered, so every process holds the same ``[N, m]`` and ``[N, K]``; in
        one process this is :meth:`infer`.
        """
        n = x.shape[0]
        z, p = self.infer(model, x, D.process_rows(n))
        return D.gather_rows(z, n), D.gather_rows(p, n)

    def _cc_step(
        self, model: CCNetwork, xb: torch.Tensor, aug: CCView, gen: torch.Generator
    ) -> torch.Tensor:
        """Loss of one step on the global batch ``xb``.

        Both views are drawn for the whole batch (the one-process draws); this process trains on
        its shard of them.
        """
        cfg = self.cfg.pretrain
        z1, p1 = model(D.shard(aug(xb, gen)))
        z2, p2 = model(D.shard(aug(xb, gen)))
        inst = instance_contrastive_loss(z1, z2, cfg.instance_temperature)
        clu = cluster_contrastive_loss(p1, p2, cfg.cluster_temperature, cfg.entropy_weight)
        return inst + clu

    def pretrain(self, ctx: StageContext) -> PretrainOut:
        """CC training (Sec. 3): instance + cluster contrast on two random views per image."""
        cfg = self.cfg.pretrain
        torch.manual_seed(ctx.seed)
        x, model, gen, aug = self.images(ctx), self.network(ctx), ctx.generator(1), self.views()
        model = D.prepare(model, ctx.device)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        bar, first, mean = Progress("pretrain", cfg.epochs), float("nan"), float("nan")
        seen, t0 = 0, time.perf_counter()
        for epoch in range(1, cfg.epochs + 1):
            total, count = torch.zeros((), device=ctx.device), 0
            parts = epoch_batches(ctx.data.n, cfg.batch_size, gen, ctx.device)
            for batch, xb in stream(x, parts):
                loss, idx = self._cc_step(model, xb, aug, gen), D.shard(batch)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                D.average_gradients(model)
                opt.step()
                total, count = total + loss.detach() * idx.numel(), count + idx.numel()
            mean = float(D.mean_over_processes(total / max(count, 1)))
            seen += count * D.world().size
            if not np.isfinite(mean):
                raise StageError(f"CC pretrain diverged (loss {mean}) at epoch {epoch}; lower lr")
            first = mean if epoch == 1 else first
            ctx.curves.log(epoch, loss=mean)
            bar.update(epoch, loss=mean)
        rate = seen / max(time.perf_counter() - t0, 1e-9)
        metrics = {"loss_first": first, "loss_last": mean, "samples_per_second": rate}
        return PretrainOut(model.state_dict(), metrics)

    def cluster_init(self, ctx: StageContext) -> ClusterInitOut:
        """Argmax of the CC cluster head (no k-means): labels, proba and embeddings."""
        z, p = self.infer(self.load_network(ctx), self.images(ctx))
        labels, metrics = argmax_assignments(p)
        return ClusterInitOut(labels, metrics, embeddings=z, proba=p)

    def predict(
        self, ctx: StageContext, init: ClusterInitOut, final: RefineOut | None
    ) -> PredictOut:
        """Cluster-head argmax of the pretrained network on new images (CC, Sec. 3.4).

        The forward pass of :meth:`cluster_init` (eval mode, test view): on the pool it gives the
        run's labels exactly. PROBA is the head's own softmax (not constructed).
        """
        return self.predict_with(ctx, self.load_network(ctx), None)

    def predict_with(
        self, ctx: StageContext, model: CCNetwork, readout: Mapping[str, Any] | None
    ) -> PredictOut:
        """Head argmax of ``model`` on ``ctx``'s images, or ``readout``'s assignment of ``z``."""
        z, p = self.infer(model, self.images(ctx))
        if readout is not None:
            p = soft_readout(z, readout, ctx.data.n_clusters)
        labels, metrics = argmax_assignments(p)
        return PredictOut(labels, metrics, proba=p, embeddings=z)


def epoch_batches(
    n: int, batch_size: int, gen: torch.Generator, device: torch.device
) -> list[torch.Tensor]:
    """Shuffled index batches of one epoch; the last one is dropped when shorter than the rest.

    Contrastive losses need two or more samples, and ULDC's evidence and KL scales depend on ``B``
    (docs/specs/uldc.md pitfall 12), so every batch has the same size ``min(batch_size, n)``.
    """
    return batches(n, min(batch_size, n), gen, device, drop_last=True)


def argmax_assignments(p: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """``argmax p`` ``[N]`` of the soft assignment ``p`` ``[N, K]``, and label-free diagnostics."""
    labels = p.argmax(1)
    sizes = torch.bincount(labels, minlength=p.shape[1])
    return labels, {
        "clusters_used": float((sizes > 0).sum()),
        "min_cluster": float(sizes.min()),
        "mean_confidence": float(p.max(1).values.mean()),
    }


Readout = dict[str, torch.Tensor]


def soft_readout(z: torch.Tensor, readout: Mapping[str, Any], k: int) -> torch.Tensor:
    """``[N, K]`` soft assignment of ``z`` ``[N, d]`` under a saved read-out (constructed).

    ``softmax_j(-||z - c_j||^2 / (2 variance))`` over the read-out's ``centers`` ``[K', d]``,
    each centre's mass added to its cluster ``groups[j]`` (the identity for a k-means read-out).
    An equal-weight isotropic mixture posterior built from the centres, not a trained output.
    """
    centers = torch.as_tensor(readout["centers"]).to(z)
    var = torch.as_tensor(readout["variance"]).to(z)
    groups = torch.as_tensor(readout["groups"]).to(z.device, torch.long)
    d2 = squared_distances(z, centers)
    return merged_proba(torch.softmax(-d2 / (2.0 * var), dim=1), groups, k)


def merge_readout(
    z: torch.Tensor, k: int, cfg: MergeConfig, seed: int
) -> tuple[torch.Tensor, Readout]:
    """Over-cluster + kNN-graph merge of ``z`` ``[N, d]``, and the read-out that reproduces it.

    The steps of :func:`dcflow.clustering.merge.overcluster_merge` in the same order (its
    ``proba`` bit for bit: tested), keeping what it discards: the ``K'`` fine centres that own
    samples, the shared variance and the fine -> cluster map ``groups``. The kNN-graph merge is
    transductive; the map it produced is not: :func:`soft_readout` with these arrays gives the
    fit's ``proba`` on ``z`` and assigns new embeddings by the same rule.

    Returns:
        ``[N, K]`` probabilities and the read-out.
    """
    n = z.shape[0]
    k_fine = fine_count(k, cfg.over, n)
    km = KMeans(k_fine, cfg.n_init, seed=seed).fit(z)
    nbrs = nearest_neighbors(z, min(cfg.neighbors, n - 1))
    fine, groups = merge_fine(km.labels_, nbrs, k, k_fine)
    centers = km.cluster_centers_[torch.unique(km.labels_)]  # a restart may leave one empty
    d2 = squared_distances(z, centers)
    var = d2.gather(1, fine[:, None]).mean().clamp_min(1e-12) / z.shape[1]
    readout = {"centers": centers, "variance": var, "groups": groups}
    return soft_readout(z, readout, k), readout
