"""Toy methods (k-means on pixels) that exercise the pipeline layouts without pretrain/selection.

Loaded into every stage process through ``$DCFLOW_PLUGINS`` by ``test_layouts.py``.
"""

import torch

from dcflow.clustering.kmeans import KMeans
from dcflow.handoff import ClusterInitOut, PredictOut, RefineOut, SelectionOut
from dcflow.methods.base import Method, StageContext
from dcflow.methods.registry import register_method


class _Toy(Method):
    paper: str = "test double"

    def cluster_init(self, ctx: StageContext) -> ClusterInitOut:
        x = torch.from_numpy(ctx.data.float_images().reshape(ctx.data.n, -1))
        km = KMeans(ctx.data.n_clusters, n_init=2, seed=ctx.seed)
        labels = km.fit_predict(x)
        d = torch.cdist(x, km.cluster_centers_)
        proba = torch.softmax(-d / d.mean(), dim=1)
        return ClusterInitOut(
            labels, {"inertia": float(km.inertia_)}, proba=proba, centers=km.cluster_centers_
        )

    def refine(
        self, ctx: StageContext, init: ClusterInitOut, selection: SelectionOut | None
    ) -> RefineOut:
        assert selection is None
        for step in range(3):
            ctx.curves.log(step, loss=1.0 / (step + 1), selected_fraction=0.5 + 0.1 * step)
        return RefineOut(init.labels, {"changed": 0.0}, proba=init.proba)

    def predict(
        self, ctx: StageContext, init: ClusterInitOut, final: RefineOut | None
    ) -> PredictOut:
        x = torch.from_numpy(ctx.data.float_images().reshape(ctx.data.n, -1))
        d = torch.cdist(x, torch.from_numpy(init.centers))
        return PredictOut(d.argmin(1), proba=torch.softmax(-d / d.mean(), dim=1))


@register_method
class ToyInitRefine(_Toy):
    name = "toy-init-refine"
    stages = ("cluster-init", "refine", "evaluate")


@register_method
class ToyInitOnly(_Toy):
    name = "toy-init-only"
    stages = ("cluster-init", "evaluate")
