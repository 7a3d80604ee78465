"""One KFP pipeline for a whole comparison: a branch per (method, dataset, seed), then a report.

Each branch is the method's own pipeline (from :func:`build`) nested as a sub-DAG, so branches run
in parallel on a cluster; the ``report`` stage waits for all of them and builds the report from the
runs MLflow holds under the comparison id (the same code as ``dcflow report``). ``report`` gets the
cluster settings of every other light stage (:func:`dcflow_pipelines.cluster.apply`), and the
pipeline root of the settings is the comparison's.
"""

from typing import Any

from dcflow_components.report import report
from dcflow_pipelines.cluster import ClusterSettings, apply
from kfp import dsl


def cell_configs(
    methods: list[str],
    datasets: list[str],
    seeds: list[int],
    comparison: str,
    overrides: list[str] | None = None,
    data_dir: str = "",
) -> list[tuple[str, str]]:
    """``(display name, run config JSON)`` of every cell, tagged with the comparison id."""
    from dcflow.compare.plan import Plan
    from dcflow.compare.runner import scoped_overrides
    from dcflow.config import build_run_config
    from dcflow.methods.registry import get_method

    plan = Plan(methods, datasets, seeds, data_dir, list(overrides or []))
    cells = []
    for key in plan.keys():
        dataset = {"name": key.dataset, **({"data_dir": data_dir} if data_dir else {})}
        sets = scoped_overrides(plan.overrides, key.method, methods)
        cls = get_method(key.method)
        cfg = build_run_config(key.method, cls.Config, dataset, None, sets, key.seed)
        cfg = cfg.model_copy(update={"tags": {**cfg.tags, "comparison": comparison}})
        cells.append((key.slug.replace("__", "-").replace("_", "-"), cfg.to_json()))
    return cells


def build_comparison(
    cells: list[tuple[str, str]],
    comparison: str,
    gpus: int | None = None,
    settings: ClusterSettings | None = None,
) -> Any:
    """Return the ``@dsl.pipeline`` running every cell in parallel and joining in ``report``.

    Args:
        cells: ``(display name, run config JSON)`` of every cell (see :func:`cell_configs`).
        comparison: the comparison id (pipeline name, MLflow tag).
        gpus: GPUs per training stage; overrides ``settings.gpus`` when given.
        settings: cluster settings of every task (default :class:`ClusterSettings`).
    """
    import json
    from dataclasses import replace

    from dcflow_pipelines.build import build

    settings = settings or ClusterSettings()
    if gpus is not None:
        settings = replace(settings, gpus=gpus)
    pipelines = {}
    for _, config in cells:
        method = json.loads(config)["method"]
        if method not in pipelines:
            pipelines[method] = build(method, settings=settings)

    @dsl.pipeline(
        name=f"dcflow-compare-{comparison}",
        description="dcflow method comparison",
        pipeline_root=settings.pipeline_root or None,
    )
    def pipeline(
        weights_store: str = "",
        tracking_uri: str = "",
        experiment: str = "dcflow-compare",
    ) -> str:
        branches = []
        for name, config in cells:
            method = json.loads(config)["method"]
            task = pipelines[method](
                config=config,
                weights_store=weights_store,
                tracking_uri=tracking_uri,
                experiment=experiment,
            )
            branches.append(task.set_display_name(name))
        rep = report(tracking_uri=tracking_uri, experiment=experiment, comparison=comparison)
        apply(rep, "report", False, settings).after(*branches)  # never cached: MLflow changes
        return rep.outputs["results"]

    return pipeline
