"""Self-CC: Self-Correcting Clustering (clustering module + robust target-distribution solver).

H. Wang et al., "Self-Correcting Clustering", IEEE TKDE 37(3):1439-1454, 2025. The paper text was
not available; this follows docs/specs/self-cc.md, a re-reading of the released code.

Stages:
    pretrain: MLP autoencoder with the feature extractor's architecture; upstream ships these
        weights but not the code that made them (docs/specs/self-cc.md §4.6). Default: clean
        reconstruction with Adam. ``pretrain.augment`` (with SGD lr 1.0 in the ``usps`` preset) is
        ASPC-DA's recipe, reconstructing warped images (:mod:`dcflow.train.autoencoder`, shared with
        ASPC-DA). ``pretrain.fe: simclr`` (the CIFAR-10/STL-10 presets) trains SCAN's SimCLR
        instead; the L2-normalised backbone features are the codes (docs/specs/self-cc.md §4.1) and
        ``rtds.arch: resnet18`` gives the classifiers a ResNet-18. Self-CC owns its weights cache
        rather than borrowing ASPC-DA's or SCAN's (``weights_owner``): its config section and
        architecture differ.
    cluster-init: k-means (``n_init`` restarts) on the codes gives the centres ``C`` ``[K, d]``;
        fuzzy memberships ``U`` (4.1) are written with the hard labels ``argmax U``. With
        ``cluster.over > 1`` (a dcflow option) k-means finds ``round(over * K)`` clusters that
        are merged into K on the codes' kNN graph (:mod:`dcflow.clustering.merge`); ``C`` starts
        at the merged groups' means and the module update (4.5) is fitted to the merged labels,
        so that ``argmax U`` carries the merge (the merged groups are not convex: nearest-centre
        labels alone lose part of it); the fitted module is ``model.pt``, and refine starts there.
    confident-sample-selection: the outer loop's first selection (eta_0, 4.3).
    refine: the outer loop (4.2): for eta_t = eta_0 + t * step, select the top-eta members per
        cluster, run RTDS (:mod:`dcflow.methods.self_cc_rtds`) for the target ``Q``, retrain the
        encoder and centres on ``argmax Q`` (4.5); stop when eta reaches 1 or the partition agrees
        with the previous one (Hungarian-matched) at >= ``agreement_stop``.
    evaluate: ACC/NMI/ARI on ``argmax U``; ECE from ``U``, the predictor of the labels.

Upstream defects and how dcflow handles them (docs/specs/self-cc.md §7):
    1. sigma (unlabelled-loss weight) is always 0 as released (an index is compared with a length):
       ``rtds.sigma_mode`` = ``released`` (0, default) | ``fixed_rule`` (the intended symmetry test,
       implemented) | ``constant``; sigma is logged every outer iteration.
    2. Unlabelled MSE on logits and prior pi = 1/A: fixed to softmax and 1/K; ``rtds.faithful``
       restores the released form.
    3. Hard-coded 20 views in the unlabelled guess: every loop uses the configured A.
    4. Centres declared (d, K) but used as rows: stored and asserted as (K, d).
    5. Float32 overflow of d^(-2/(m-1)): memberships in log space, log-U fed to the NLL.
    6. OneHotEncoder dropping absent classes: ``F.one_hot(num_classes=K)``.
    7. Accumulated eta (0.9999999999999999): eta_t = eta_0 + t * step, quotas rounded to 9 decimals.
    8. Best-of-E_f epoch picked with ground truth: the last epoch is kept; no labels outside
       evaluate.
    9. CUDA-only loading: device-agnostic, weights loaded with ``map_location='cpu'``.
    10. Clustering module left in train mode for memberships: inference runs in eval mode.
    11. float64 view banks of gigabytes: views are uint8 ``[S, A, D]``, per outer iteration.
    12. One PNG per view (Augmentor): seeded batched torch affine warps on the device.
    13. Empty clusters / labelled / unlabelled sets: skipped, never an empty loader.
    14. No seeds upstream: every draw comes from generators seeded by the run seed.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch

from dcflow.clustering import KMeans
from dcflow.clustering.merge import fine_count, merge_labels
from dcflow.clustering.metrics import cluster_acc
from dcflow.data.bank import ImageBank
from dcflow.errors import StageError
from dcflow.handoff import (
    ClusterInitOut,
    PredictOut,
    PretrainOut,
    RefineOut,
    Selection,
    SelectionOut,
)
from dcflow.methods.base import Method, StageContext
from dcflow.methods.registry import register_method
from dcflow.methods.self_cc_config import SelfCCConfig
from dcflow.methods.self_cc_refine import (
    Pick,
    load_module,
    make_views,
    predict_module,
    refine_output,
    update_module,
)
from dcflow.methods.self_cc_rtds import RTDSResult, run_rtds
from dcflow.models import AutoEncoder
from dcflow.models.autoencoder import embed
from dcflow.models.cluster import ClusterModel, build_model, channel_stats
from dcflow.models.self_cc import ClusteringModule, ContrastiveFE
from dcflow.models.state import load_into
from dcflow.progress import Progress
from dcflow.selection.self_cc import eta_schedule, per_cluster_fraction, per_column_topk
from dcflow.train.autoencoder import pretrain_autoencoder
from dcflow.train.simclr import simclr_train
from dcflow.transforms import RandomAffine


@register_method
class SelfCC(Method):
    """Self-CC (Wang et al., TKDE 2025): fuzzy clustering module corrected by a robust solver."""

    name = "self-cc"
    smoke: ClassVar[tuple[str, ...]] = tuple(
        "pretrain.hidden_dims=[32] pretrain.epochs=2 cluster.n_init=1 "
        "selection.eta_step=0.2 views.count=2 rtds.classifier1=[16] "
        "rtds.classifier2=[16] rtds.warmup_epochs=1 rtds.cotrain_epochs=1 "
        "update.epochs=1".split()
    )
    paper = "Wang et al., Self-Correcting Clustering, TKDE 2025"
    Config = SelfCCConfig
    pretrain_sections = ("pretrain",)
    cfg: SelfCCConfig

    def _flat(self, ctx: StageContext) -> ImageBank:
        return ctx.images().reshape(ctx.data.n, -1)

    def _autoencoder(self, ctx: StageContext, load: bool) -> AutoEncoder:
        p = self.cfg.pretrain
        model = AutoEncoder([int(np.prod(ctx.data.image_shape)), *p.hidden_dims, p.embedding_dim])
        if load:
            load_into(model, ctx.weights, "autoencoder")
        return model.to(ctx.device)

    def _simclr_model(self, ctx: StageContext, load: bool) -> ClusterModel:
        p, images = self.cfg.pretrain, ctx.images()
        mean, std = channel_stats(images) if not load else (None, None)
        model = build_model(p.model, ctx.data.image_shape, ctx.data.n_clusters, 0, mean, std)
        if load:
            load_into(model, ctx.weights, "SimCLR network")
        return model.to(ctx.device)

    def _encoder(self, ctx: StageContext) -> torch.nn.Module:
        """The pretrained FE: the autoencoder's encoder or the L2-normalised SimCLR backbone."""
        if self.cfg.pretrain.fe == "simclr":
            return ContrastiveFE(self._simclr_model(ctx, load=True), ctx.data.image_shape)
        return self._autoencoder(ctx, load=True).encoder

    def pretrain(self, ctx: StageContext) -> PretrainOut:
        """Train the FE: the fallback for the unreleased FE training (4.6).

        ``pretrain.fe = autoencoder`` reconstructs images (clean by default, warped with
        ``pretrain.augment``); ``simclr`` trains a contrastive backbone (SCAN's SimCLR loop).
        """
        cfg = self.cfg.pretrain
        torch.manual_seed(ctx.seed)
        model: torch.nn.Module
        if cfg.fe == "simclr":
            model = self._simclr_model(ctx, load=False)
            metrics = simclr_train(model, ctx.images(), cfg.simclr, ctx.generator(1), ctx.curves)
        else:
            model = self._autoencoder(ctx, load=False)
            first, last = pretrain_autoencoder(
                model,
                self._flat(ctx),
                cfg,
                cfg.views.flat_augment(ctx.data.image_shape),
                ctx.generator(1),
                lambda epoch, loss: ctx.curves.log(epoch, loss=loss),
            )
            metrics = {"loss_first": first, "loss_last": last}
        return PretrainOut(model.state_dict(), metrics)

    def cluster_init(self, ctx: StageContext) -> ClusterInitOut:
        """Centres ``C`` ``[K, d]`` on the codes; memberships ``U`` (4.1) and ``argmax U``.

        ``cluster.over = 1``: k-means with K (docs/specs/self-cc.md §4.6). ``over > 1`` (a dcflow
        option): k-means with K' = round(over * K), the fine clusters merged into K on the kNN graph
        of the codes, centres at the merged groups' means, then the module update (4.5) fitted to
        the merged labels for ``fit_epochs``, so that ``argmax U`` carries the merge; the fitted
        module is returned as ``model`` (with the fine labels) and refine starts from it.
        """
        c, x, k = self.cfg.cluster, self._flat(ctx), ctx.data.n_clusters
        encoder = self._encoder(ctx)
        z = embed(encoder, x)
        km = KMeans(fine_count(k, c.over, ctx.data.n), c.n_init, c.max_iter, seed=ctx.seed).fit(z)
        metrics = {"inertia": km.inertia_}
        merged: torch.Tensor | None = None
        fine, state = None, None
        if km.cluster_centers_.shape[0] == k:
            module = ClusteringModule(encoder, km.cluster_centers_, c.m)
        else:
            merged = merge_labels(z, km.labels_, k)
            if int(torch.bincount(merged, minlength=k).min()) == 0:
                raise StageError("the merged start left a cluster empty; lower cluster.over")
            centres = torch.stack([z[merged == j].mean(0) for j in range(k)])
            module = ClusteringModule(encoder, centres, c.m)
            fit = self.cfg.update.model_copy(update={"epochs": c.fit_epochs})
            losses = update_module(module, x, merged, fit, ctx.generator(2))
            fine, state = km.labels_, module.state_dict()
            metrics |= {"fit_loss": losses[-1] if losses else float("nan")}
        z, u = module.infer(x)
        labels = u.argmax(1)
        if merged is not None:
            metrics |= {"fit_agreement": float((labels == merged).float().mean())}
        sizes = torch.bincount(labels, minlength=k)
        return ClusterInitOut(
            labels, {**metrics, "min_cluster": float(sizes.min())}, embeddings=z,
            centers=module.centers, membership=u, fine_labels=fine, model=state,
        )  # fmt: skip

    def _select(self, u: torch.Tensor, eta: float) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.cfg.selection
        if s.selector == "per_column_topk":
            return per_column_topk(u, eta, s.per_cluster)
        return per_cluster_fraction(u, eta)

    def _schedule(self) -> list[float]:
        s = self.cfg.selection
        return eta_schedule(s.eta0, s.eta_step, s.stop)

    def select(self, ctx: StageContext, init: ClusterInitOut) -> SelectionOut:
        """Level-1 selection at eta_0 on the cluster-init memberships (4.3)."""
        u = torch.from_numpy(init.membership)
        schedule = self._schedule()
        if not schedule:
            raise StageError("the eta schedule is empty: selection.eta0 already meets the stop")
        idx, lab = self._select(u, schedule[0])
        for t, eta in enumerate(schedule):
            ctx.curves.log(t, eta=eta)
        extras = {"pseudo_labels": lab.numpy(), "eta": np.float64(schedule[0]), "t": np.int64(0)}
        metrics = {
            "n_selected": float(idx.numel()),
            "selected_fraction": idx.numel() / max(1, u.shape[0]),
            "eta": schedule[0],
            "n_outer_planned": float(len(schedule)),
        }
        return SelectionOut(Selection(idx.numpy(), extras), metrics)

    def _first_selection(
        self, ctx: StageContext, u: torch.Tensor, eta: float, selection: SelectionOut | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The selection stage's output when the layout has one, else recomputed at eta_0."""
        if selection is None:
            return self._select(u, eta)
        sel = selection.selected
        if abs(float(sel["eta"]) - eta) > 1e-9:
            raise StageError(f"selection artifact has eta {float(sel['eta'])}, schedule {eta}")
        return (
            torch.from_numpy(sel["indices"]).to(ctx.device),
            torch.from_numpy(sel["pseudo_labels"]).to(ctx.device),
        )

    def _code_dim(self, encoder: torch.nn.Module) -> int:
        if isinstance(encoder, ContrastiveFE):
            return encoder.out_dim
        return self.cfg.pretrain.embedding_dim

    def _module(self, ctx: StageContext, init: ClusterInitOut) -> ClusteringModule:
        centers = torch.from_numpy(init.centers)
        encoder = self._encoder(ctx)
        shape = (ctx.data.n_clusters, self._code_dim(encoder))
        if tuple(centers.shape) != shape:  # pitfall 4: centres are rows
            raise StageError(f"centres have shape {tuple(centers.shape)}, expected (K, d) {shape}")
        module = ClusteringModule(encoder, centers.to(ctx.device), self.cfg.cluster.m)
        if fine_count(ctx.data.n_clusters, self.cfg.cluster.over, ctx.data.n) > shape[0]:
            # cluster-init fitted the encoder to the merged labels: start from that module
            load_module(module, init.model)
        return module

    def _outer_step(
        self, ctx: StageContext, module: ClusteringModule, pick: Pick, gen: torch.Generator
    ) -> tuple[RTDSResult, list[float]]:
        """RTDS on the selection, then the module update on ``argmax Q`` (4.4, 4.5)."""
        if pick.indices.numel() == 0:
            raise StageError(f"outer iteration {pick.t} selected no sample")
        v, x = self.cfg.views, self._flat(ctx)
        aug = RandomAffine(v.rotation, v.shift, v.interpolation, v.stroke)
        images = ctx.images()
        views = make_views(images[pick.indices], v.count, aug, gen)
        seed = ctx.seed * 1000 + pick.t
        res = run_rtds(
            views, pick.labels, x, ctx.data.n_clusters, self.cfg.rtds, gen, seed, images[0].shape
        )
        return res, update_module(module, x, res.target.argmax(1), self.cfg.update, gen)

    def refine(
        self, ctx: StageContext, init: ClusterInitOut, selection: SelectionOut | None
    ) -> RefineOut:
        """The outer loop (4.2): select, RTDS, module update, agreement stop."""
        torch.manual_seed(ctx.seed)
        module, gen, x = self._module(ctx, init), ctx.generator(3), self._flat(ctx)
        _, u = module.infer(x)
        schedule = self._schedule()
        if not schedule:
            raise StageError("the eta schedule is empty: selection.eta0 already meets the stop")
        bar = Progress("refine", len(schedule), "outer iterations")
        history: list[dict[str, float]] = []
        picks: list[Pick] = []
        for t, eta in enumerate(schedule):
            a_prev = u.argmax(1)
            first = t == 0
            picked = (
                self._first_selection(ctx, u, eta, selection) if first else self._select(u, eta)
            )
            picks.append(Pick(t, eta, *picked))
            res, losses = self._outer_step(ctx, module, picks[-1], gen)
            _, u = module.infer(x)
            agree = cluster_acc(a_prev.cpu().numpy(), u.argmax(1).cpu().numpy())
            row = {
                "eta": eta,
                "n_selected": float(picks[-1].indices.numel()),
                "agreement": agree,
                "update_loss": losses[-1] if losses else float("nan"),
                **res.metrics,
            }
            history.append({"t": t, **row})
            ctx.curves.log(t, **row)
            bar.update(t + 1, agreement=agree, sigma=res.sigma)
            if agree >= self.cfg.selection.agreement_stop:
                break
        out = refine_output(module, x, res, picks, history)
        same = (res.target.argmax(1) == out.labels).float().mean()
        out.metrics = {
            "n_outer": float(len(history)),
            "stopped_by_agreement": float(agree >= self.cfg.selection.agreement_stop),
            "last_agreement": agree,
            "sigma_max": max(h["sigma"] for h in history),
            "target_vs_module_agreement": float(same),
        }
        return out

    def predict(
        self, ctx: StageContext, init: ClusterInitOut, final: RefineOut | None
    ) -> PredictOut:
        """``argmax U`` of the refined clustering module on new images (4.1; ``predict_module``)."""
        encoder = self._encoder(ctx)
        return predict_module(encoder, init, final, self.cfg.cluster.m, self._flat(ctx))
