"""Self-CC: Self-Correcting Clustering (clustering module + robust target-distribution solver).

H. Wang et al., "Self-Correcting Clustering", IEEE TKDE 37(3):1439-1454, 2025. The paper text was
not available; this follows ``shared/methods/self-cc.md``, a re-reading of the released code.

Stages:
    pretrain: MLP autoencoder (the feature extractor's architecture) reconstructing clean images
        with Adam; upstream ships these weights but not the code that made them (spec 4.6).
    cluster-init: k-means (``n_init`` restarts) on the codes gives the centres ``C`` ``[K, d]``;
        fuzzy memberships ``U`` (4.1) are written with the hard labels ``argmax U``.
    confident-sample-selection: the outer loop's first selection (eta_0, 4.3).
    refine: the outer loop (4.2): for eta_t = eta_0 + t * step, select the top-eta members per
        cluster, run RTDS (:mod:`dcflow.methods.self_cc_rtds`) for the target ``Q``, retrain the
        encoder and centres on ``argmax Q`` (4.5); stop when eta reaches 1 or the partition agrees
        with the previous one (Hungarian-matched) at >= ``agreement_stop``.
    evaluate: ACC/NMI/ARI on ``argmax U``; ECE from the last RTDS pair's probabilities ``Q / 2``.

Upstream defects and how dcflow handles them (spec section 7):
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

from typing import Literal

import numpy as np
import torch
from pydantic import Field

from dcflow import artifacts as art
from dcflow.clustering import KMeans
from dcflow.clustering.metrics import cluster_acc
from dcflow.config import StrictModel
from dcflow.errors import StageError, WeightsError
from dcflow.losses.self_cc import log_membership
from dcflow.methods.base import Method, StageContext
from dcflow.methods.self_cc_refine import make_views, update_module
from dcflow.methods.self_cc_rtds import RTDSConfig, RTDSResult, run_rtds
from dcflow.models import AutoEncoder, load_state
from dcflow.models.self_cc import ClusteringModule
from dcflow.progress import Progress
from dcflow.registry import register_method
from dcflow.selection.self_cc import eta_schedule, per_cluster_fraction, per_column_topk
from dcflow.transforms import RandomAffine


class PretrainConfig(StrictModel):
    """Autoencoder with the feature extractor's architecture (USPS FE: D-500-500-1000-10)."""

    hidden_dims: list[int] = Field(default_factory=lambda: [500, 500, 1000], min_length=1)
    embedding_dim: int = Field(default=10, ge=1)
    epochs: int = Field(default=50, ge=1)
    batch_size: int = Field(default=256, ge=1)
    lr: float = Field(default=1e-3, gt=0.0)


class ClusterConfig(StrictModel):
    """k-means initialisation and the fuzzifier m (1.1 for USPS/MNIST, 1.04 for STL/CIFAR)."""

    m: float = Field(default=1.1, gt=1.0)
    n_init: int = Field(default=20, ge=1)
    max_iter: int = Field(default=300, ge=1)


class SelectionConfig(StrictModel):
    """Outer-loop schedule and level-1 selector (USPS: 0.6 + 0.05 t while eta < 1)."""

    eta0: float = Field(default=0.6, gt=0.0, le=1.0)
    eta_step: float = Field(default=0.05, gt=0.0)
    stop: Literal[">=", ">"] = ">="
    selector: Literal["per_cluster_fraction", "per_column_topk"] = "per_cluster_fraction"
    per_cluster: int = Field(default=0, ge=0, description="topk quota base; 0 means N/K")
    agreement_stop: float = Field(default=0.998, gt=0.0, le=1.0)


class ViewsConfig(StrictModel):
    """A augmented views per selected sample: random rotation and shift on the device."""

    count: int = Field(default=20, ge=1)
    rotation: float = Field(default=10.0, ge=0.0, le=180.0)
    shift: float = Field(default=0.1, ge=0.0, lt=0.5)
    interpolation: Literal["bilinear", "nearest"] = "bilinear"


class UpdateConfig(StrictModel):
    """Clustering-module update on argmax Q (USPS: 20 epochs, batch 128, SGD 0.01 mom 0.99)."""

    epochs: int = Field(default=20, ge=0)
    batch_size: int = Field(default=128, ge=1)
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = Field(default=0.01, gt=0.0)
    momentum: float = Field(default=0.99, ge=0.0, lt=1.0)


class SelfCCConfig(StrictModel):
    """All Self-CC hyper-parameters; defaults follow the released USPS code."""

    pretrain: PretrainConfig = Field(default_factory=PretrainConfig)
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    selection: SelectionConfig = Field(default_factory=SelectionConfig)
    views: ViewsConfig = Field(default_factory=ViewsConfig)
    rtds: RTDSConfig = Field(default_factory=RTDSConfig)
    update: UpdateConfig = Field(default_factory=UpdateConfig)


@register_method
class SelfCC(Method):
    """Self-CC (Wang et al., TKDE 2025): fuzzy clustering module corrected by a robust solver."""

    name = "self-cc"
    paper = "Wang et al., Self-Correcting Clustering, TKDE 2025"
    Config = SelfCCConfig
    pretrain_sections = ("pretrain",)
    cfg: SelfCCConfig

    def _flat(self, ctx: StageContext) -> torch.Tensor:
        return torch.from_numpy(ctx.data.x.reshape(ctx.data.n, -1)).to(ctx.device)

    def _autoencoder(self, ctx: StageContext, load: bool) -> AutoEncoder:
        p = self.cfg.pretrain
        model = AutoEncoder([int(np.prod(ctx.data.image_shape)), *p.hidden_dims, p.embedding_dim])
        if load:
            if ctx.weights is None:
                raise WeightsError("this stage needs pretrained weights")
            try:
                model.load_state_dict(load_state(ctx.weights))
            except RuntimeError:
                raise WeightsError(
                    f"weights {ctx.weights} do not fit the configured autoencoder"
                ) from None
        return model.to(ctx.device)

    def pretrain(self, ctx: StageContext) -> dict[str, float]:
        """Reconstruct clean images (MSE, Adam): the fallback for the unreleased FE training."""
        cfg = self.cfg.pretrain
        torch.manual_seed(ctx.seed)
        x, model, gen = self._flat(ctx), self._autoencoder(ctx, load=False), ctx.generator(1)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        bar, losses = Progress("pretrain", cfg.epochs), []
        for epoch in range(1, cfg.epochs + 1):
            total = torch.zeros((), device=ctx.device)
            for idx in (
                torch.randperm(ctx.data.n, generator=gen).to(ctx.device).split(cfg.batch_size)
            ):
                loss = torch.nn.functional.mse_loss(model(x[idx]), x[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.detach() * idx.numel()
            losses.append(float(total) / ctx.data.n)
            if not np.isfinite(losses[-1]):
                raise StageError(f"pretrain diverged at epoch {epoch}; lower pretrain.lr")
            ctx.curves.log(epoch, loss=losses[-1])
            bar.update(epoch, loss=losses[-1])
        with art.atomic_path(ctx.out / art.WEIGHTS) as tmp:
            torch.save(model.state_dict(), tmp)
        return {"loss_first": losses[0], "loss_last": losses[-1]}

    def cluster_init(self, ctx: StageContext) -> dict[str, float]:
        """k-means on the codes -> centres ``[K, d]``; memberships ``U`` (4.1) and ``argmax U``."""
        c = self.cfg.cluster
        z = self._autoencoder(ctx, load=True).embed(self._flat(ctx))
        km = KMeans(ctx.data.n_clusters, c.n_init, c.max_iter, seed=ctx.seed).fit(z)
        u = log_membership(z, km.cluster_centers_, c.m).exp()
        labels = u.argmax(1)
        art.save_npy(ctx.out, art.EMBEDDINGS, z.cpu().numpy().astype(np.float32))
        art.save_npy(ctx.out, art.CENTERS, km.cluster_centers_.cpu().numpy().astype(np.float32))
        art.save_npy(ctx.out, art.MEMBERSHIP, u.cpu().numpy().astype(np.float32))
        art.save_npy(ctx.out, art.LABELS, labels.cpu().numpy().astype(np.int64))
        sizes = torch.bincount(labels, minlength=ctx.data.n_clusters)
        return {"inertia": km.inertia_, "min_cluster": float(sizes.min())}

    def _select(self, u: torch.Tensor, eta: float) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.cfg.selection
        if s.selector == "per_column_topk":
            return per_column_topk(u, eta, s.per_cluster)
        return per_cluster_fraction(u, eta)

    def _schedule(self) -> list[float]:
        s = self.cfg.selection
        return eta_schedule(s.eta0, s.eta_step, s.stop)

    def select(self, ctx: StageContext) -> dict[str, float]:
        """Level-1 selection at eta_0 on the cluster-init memberships (4.3)."""
        u = torch.from_numpy(art.load_npy(ctx.inputs["cluster-init"], art.MEMBERSHIP))
        schedule = self._schedule()
        if not schedule:
            raise StageError("the eta schedule is empty: selection.eta0 already meets the stop")
        idx, lab = self._select(u, schedule[0])
        for t, eta in enumerate(schedule):
            ctx.curves.log(t, eta=eta)
        art.save_npz(
            ctx.out,
            art.SELECTED,
            indices=idx.numpy(),
            pseudo_labels=lab.numpy(),
            eta=np.float64(schedule[0]),
            t=np.int64(0),
        )
        return {
            "n_selected": float(idx.numel()),
            "selected_fraction": idx.numel() / max(1, u.shape[0]),
            "eta": schedule[0],
            "n_outer_planned": float(len(schedule)),
        }

    def _first_selection(
        self, ctx: StageContext, u: torch.Tensor, eta: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The selection stage's artifact when the layout has one, else recomputed at eta_0."""
        if "confident-sample-selection" not in ctx.inputs:
            return self._select(u, eta)
        sel = art.load_npz(ctx.inputs["confident-sample-selection"], art.SELECTED)
        if abs(float(sel["eta"]) - eta) > 1e-9:
            raise StageError(f"selection artifact has eta {float(sel['eta'])}, schedule {eta}")
        return (
            torch.from_numpy(sel["indices"]).to(ctx.device),
            torch.from_numpy(sel["pseudo_labels"]).to(ctx.device),
        )

    def _module(self, ctx: StageContext) -> ClusteringModule:
        centers = torch.from_numpy(art.load_npy(ctx.inputs["cluster-init"], art.CENTERS))
        shape = (ctx.data.n_clusters, self.cfg.pretrain.embedding_dim)
        if tuple(centers.shape) != shape:  # pitfall 4: centres are rows
            raise StageError(f"centres have shape {tuple(centers.shape)}, expected (K, d) {shape}")
        encoder = self._autoencoder(ctx, load=True).encoder
        return ClusteringModule(encoder, centers.to(ctx.device), self.cfg.cluster.m)

    def _outer_step(
        self,
        ctx: StageContext,
        module: ClusteringModule,
        picked: tuple[torch.Tensor, ...],
        gen: torch.Generator,
        t: int,
    ) -> tuple[RTDSResult, list[float]]:
        """RTDS on the selection, then the module update on ``argmax Q`` (4.4, 4.5)."""
        cfg, (idx, lab) = self.cfg, picked
        if idx.numel() == 0:
            raise StageError(f"outer iteration {t} selected no sample")
        v = cfg.views
        aug = RandomAffine(v.rotation, v.shift, v.interpolation)
        images = torch.from_numpy(ctx.data.x).to(ctx.device)
        views = make_views(images[idx], v.count, aug, gen)
        x = self._flat(ctx)
        res = run_rtds(views, lab, x, ctx.data.n_clusters, cfg.rtds, gen, ctx.seed * 1000 + t)
        u = cfg.update
        losses = update_module(
            module,
            x,
            res.target.argmax(1),
            u.epochs,
            u.batch_size,
            u.optimizer,
            u.lr,
            u.momentum,
            gen,
        )
        return res, losses

    def refine(self, ctx: StageContext) -> dict[str, float]:
        """The outer loop (4.2): select, RTDS, module update, agreement stop."""
        torch.manual_seed(ctx.seed)
        module, gen, x = self._module(ctx), ctx.generator(3), self._flat(ctx)
        _, u = module.infer(x)
        schedule = self._schedule()
        bar, history, picks = Progress("refine", len(schedule), "outer iterations"), [], []
        res: RTDSResult | None = None
        for t, eta in enumerate(schedule):
            a_prev = u.argmax(1)
            picked = self._first_selection(ctx, u, eta) if t == 0 else self._select(u, eta)
            res, losses = self._outer_step(ctx, module, picked, gen, t)
            _, u = module.infer(x)
            agree = cluster_acc(a_prev.cpu().numpy(), u.argmax(1).cpu().numpy())
            row = {
                "eta": eta,
                "n_selected": float(picked[0].numel()),
                "agreement": agree,
                "update_loss": losses[-1] if losses else float("nan"),
                **res.metrics,
            }
            history.append({"t": t, **row})
            ctx.curves.log(t, **row)
            picks.append((t, eta, *picked))
            bar.update(t + 1, agreement=agree, sigma=res.sigma)
            if agree >= self.cfg.selection.agreement_stop:
                break
        if res is None:
            raise StageError("the eta schedule is empty: selection.eta0 already meets the stop")
        return self._save_refine(ctx, module, x, res, picks, history)

    def _save_refine(
        self,
        ctx: StageContext,
        module: ClusteringModule,
        x: torch.Tensor,
        res: RTDSResult,
        picks: list[tuple],
        history: list[dict],
    ) -> dict[str, float]:
        z, u = module.infer(x)
        labels, q = u.argmax(1), res.target
        proba = q / q.sum(1, keepdim=True)
        np_ = lambda t: t.detach().cpu().numpy()  # noqa: E731
        art.save_npy(ctx.out, art.LABELS, np_(labels).astype(np.int64))
        art.save_npy(ctx.out, art.PROBA, np_(proba).astype(np.float32))
        art.save_npy(ctx.out, art.EMBEDDINGS, np_(z).astype(np.float32))
        art.save_npy(ctx.out, art.MEMBERSHIP, np_(u).astype(np.float32))
        art.save_npy(ctx.out, art.CENTERS, np_(module.centers).astype(np.float32))
        art.save_npy(ctx.out, art.TARGET, np_(q).astype(np.float32))
        art.save_npz(
            ctx.out,
            art.DIVISION,
            indices=np_(picks[-1][2]),
            **{
                f"{name}_h{i + 1}": np_(v)
                for i in range(2)
                for name, v in (("labelled", res.labelled[i]), ("weights", res.weights[i]))
            },
        )
        art.save_npz(
            ctx.out,
            art.SELECTED,
            indices=np.concatenate([np_(p[2]) for p in picks]).astype(np.int64),
            pseudo_labels=np.concatenate([np_(p[3]) for p in picks]).astype(np.int64),
            t=np.concatenate([np.full(p[2].numel(), p[0], np.int64) for p in picks]),
            eta=np.array([p[1] for p in picks], np.float64),
        )
        art.append_jsonl(ctx.out, art.HISTORY, history)
        with art.atomic_path(ctx.out / art.MODEL) as tmp:
            torch.save(module.state_dict(), tmp)
        return {
            "n_outer": float(len(history)),
            "stopped_by_agreement": float(
                history[-1]["agreement"] >= self.cfg.selection.agreement_stop
            ),
            "last_agreement": history[-1]["agreement"],
            "sigma_max": max(h["sigma"] for h in history),
            "target_vs_module_agreement": float((q.argmax(1) == labels).float().mean()),
        }
