"""Build a method's sweep-k pipeline: one pretrain, a ``ParallelFor`` of cluster-init over K.

download-weights -> (pretrain | verify-weights) -> plan-k -> ParallelFor(point): sweep-point
(cluster-init at K + internal scores) -> choose-k (``dsl.Collected`` of every point). The loop
runs over plan-k's output, whose items carry the config at K and the weights reference (see
``dcflow_components.sweep`` for the kfp.local limit this avoids). For methods whose pretrained
weights depend on K (``Method.pretrain_uses_k``), the weights branch moves inside the loop
(point-config -> download-weights -> pretrain | verify-weights): one pretrain per K, each cached
under its own key. Cluster settings as in
:mod:`dcflow_pipelines.build`; the sweep points run with the cluster-init stage's settings.
"""

from typing import Any, List  # noqa: UP035  (KFP parses typing.List only)

from dcflow_components import choose_k, plan_k, point_config, sweep_point
from dcflow_pipelines.build import method_and_stager, weights_tasks
from dcflow_pipelines.cluster import ClusterSettings
from kfp import dsl


def build_sweep(
    method: str,
    gpus: int | None = None,
    default_config: str = "",
    settings: ClusterSettings | None = None,
) -> Any:
    """Return the ``@dsl.pipeline`` sweeping K for ``method`` (arguments as in ``build``)."""
    cls, settings, stage = method_and_stager(method, gpus, settings)
    shared = "pretrain" in cls.stages and not cls.pretrain_uses_k
    per_k = "pretrain" in cls.stages and cls.pretrain_uses_k

    @dsl.pipeline(
        name=f"dcflow-{method}-sweep-k",
        description=f"{cls.name}: choose K by internal criteria (no labels)",
        pipeline_root=settings.pipeline_root or None,
    )
    def pipeline(
        ks: List[int],  # noqa: UP006
        config: str = default_config,
        criterion: str = "silhouette",
        weights_store: str = "",
        tracking_uri: str = "",
        experiment: str = "dcflow",
    ) -> str:
        uri: Any = ""
        sha: Any = ""
        if shared:
            uri, sha, _ = weights_tasks(stage, config, weights_store)
        plan = stage(plan_k(config=config, ks=ks, weights_uri=uri, weights_sha256=sha), "plan-k")
        with dsl.ParallelFor(plan.output, name="each-k") as item:
            weights: dict[str, Any] = {}
            if per_k:
                cfg = stage(point_config(point=item), "point-config")
                k_uri, k_sha, _ = weights_tasks(stage, cfg.output, weights_store)
                weights = {"weights_uri": k_uri, "weights_sha256": k_sha}
            point = stage(sweep_point(point=item, **weights), "cluster-init")
            point.set_display_name("sweep-point")
        pick = stage(
            choose_k(
                config=config,
                points=dsl.Collected(point.outputs["Output"]),
                criterion=criterion,
                tracking_uri=tracking_uri,
                experiment=experiment,
            ),
            "choose-k",
        )
        return pick.outputs["Output"]

    return pipeline
