"""Toy methods (k-means on pixels) that exercise the pipeline layouts without pretrain/selection.

Loaded into every stage process through ``$DCFLOW_PLUGINS`` by ``test_layouts.py``.
"""

import numpy as np
import torch

from dcflow import artifacts as art
from dcflow.clustering.kmeans import KMeans
from dcflow.methods.base import Method, StageContext
from dcflow.registry import register_method


class _Toy(Method):
    paper: str = "test double"

    def cluster_init(self, ctx: StageContext) -> dict[str, float]:
        x = torch.from_numpy(ctx.data.x.reshape(ctx.data.n, -1))
        km = KMeans(ctx.data.n_clusters, n_init=2, seed=ctx.seed)
        labels = km.fit_predict(x)
        art.save_npy(ctx.out, art.LABELS, labels.numpy().astype(np.int64))
        d = torch.cdist(x, km.cluster_centers_)
        proba = torch.softmax(-d / d.mean(), dim=1)
        art.save_npy(ctx.out, art.PROBA, proba.numpy().astype(np.float32))
        return {"inertia": float(km.inertia_)}

    def refine(self, ctx: StageContext) -> dict[str, float]:
        labels = torch.from_numpy(art.load_npy(ctx.inputs["cluster-init"], art.LABELS))
        assert "confident-sample-selection" not in ctx.inputs
        art.save_npy(ctx.out, art.LABELS, labels.numpy())
        art.save_npy(ctx.out, art.PROBA, art.load_npy(ctx.inputs["cluster-init"], art.PROBA))
        for step in range(3):
            ctx.curves.log(step, loss=1.0 / (step + 1), selected_fraction=0.5 + 0.1 * step)
        return {"changed": 0.0}


@register_method
class ToyInitRefine(_Toy):
    name = "toy-init-refine"
    stages = ("cluster-init", "refine", "evaluate")


@register_method
class ToyInitOnly(_Toy):
    name = "toy-init-only"
    stages = ("cluster-init", "evaluate")
