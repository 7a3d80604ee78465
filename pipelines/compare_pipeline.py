"""One KFP pipeline for a whole comparison: a branch per (method, dataset, seed), then a report.

Each branch is the method's own pipeline (from :func:`build`) nested as a sub-DAG, so branches run
in parallel on a cluster; the ``report`` stage waits for all of them and builds the report from the
runs MLflow holds under the comparison id (the same code as ``dcflow report``).
"""

from typing import Any

from dcflow_components.report import report
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
    from dcflow.registry import get_method

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
    cells: list[tuple[str, str]], comparison: str, gpus: int | None = None, settings: Any = None
) -> Any:
    """Return the ``@dsl.pipeline`` running every cell in parallel and joining in ``report``."""
    import json

    from dcflow_pipelines.build import build

    pipelines = {}
    for _, config in cells:
        method = json.loads(config)["method"]
        if method not in pipelines:
            pipelines[method] = build(method, gpus=gpus, settings=settings)

    @dsl.pipeline(name=f"dcflow-compare-{comparison}", description="dcflow method comparison")
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
        rep.set_display_name("report").set_caching_options(False).after(*branches)
        return rep.outputs["results"]

    return pipeline
