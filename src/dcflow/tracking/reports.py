"""Reading runs back from MLflow for reports, and the comparison and sweep runs.

``dcflow compare``/``report`` read the finished pipeline runs and their stage curves; the report
itself and a ``sweep-k`` choice are logged as runs of their own (``dcflow.kind`` ``comparison`` and
``sweep``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from dcflow.errors import ServiceError
from dcflow.tracking.runs import experiment_id_for, open_client


def pipeline_runs(tracking_uri: str, experiment: str, comparison: str = "") -> list[dict[str, Any]]:
    """Finished pipeline (parent) runs of ``experiment``, optionally of one comparison only.

    Returns:
        One dict per run: ``run_id``, ``tags``, ``metrics`` (latest values), ``start_time``.
    """
    client, uri = open_client(tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise ServiceError(f"MLflow at {uri} has no experiment {experiment!r}")
    query = "tags.`dcflow.kind` = 'pipeline'"
    if comparison:
        query += f" and tags.comparison = '{comparison}'"
    runs = client.search_runs([exp.experiment_id], filter_string=query, max_results=5000)
    return [
        {
            "run_id": r.info.run_id,
            "tags": dict(r.data.tags),
            "metrics": dict(r.data.metrics),
            "start_time": r.info.start_time,
        }
        for r in runs
    ]


def stage_curves(tracking_uri: str, parent_id: str) -> dict[str, dict[str, list[list[float]]]]:
    """Per-step curves of each stage (child run) of a run: ``{stage: {key: [[step, v]]}}``."""
    client, _ = open_client(tracking_uri)
    exp_id = client.get_run(parent_id).info.experiment_id
    children = client.search_runs(
        [exp_id], filter_string=f"tags.mlflow.parentRunId = '{parent_id}'", max_results=100
    )
    out: dict[str, dict[str, list[list[float]]]] = {}
    for child in children:
        stage = child.data.tags.get("stage", child.info.run_name)
        for key in child.data.metrics:
            hist = client.get_metric_history(child.info.run_id, key)
            if len(hist) > 1:
                out.setdefault(stage, {})[key] = [[m.step, m.value] for m in hist]
    return out


def download_file(tracking_uri: str, run_id: str, name: str, dst: Path) -> Path | None:
    """Copy one artifact file of a run into ``dst`` (a directory); ``None`` when it is absent."""
    client, _ = open_client(tracking_uri)
    if name not in {f.path for f in client.list_artifacts(run_id)}:
        return None
    dst.mkdir(parents=True, exist_ok=True)
    return Path(client.download_artifacts(run_id, name, str(dst)))


def log_comparison_run(
    tracking_uri: str, experiment: str, comparison: str, params: dict[str, str], files: list[Path]
) -> str:
    """One parent "comparison" run holding the report and its plots; returns its run id."""
    client, uri = open_client(tracking_uri)
    exp_id = experiment_id_for(client, experiment, uri)
    query = f"tags.`dcflow.kind` = 'comparison' and tags.comparison = '{comparison}'"
    for old in client.search_runs([exp_id], filter_string=query):
        client.delete_run(old.info.run_id)  # a rebuilt report replaces the previous one
    run = client.create_run(
        exp_id,
        run_name=f"comparison-{comparison}",
        tags={"dcflow.kind": "comparison", "comparison": comparison},
    )
    rid = run.info.run_id
    for k, v in params.items():
        client.log_param(rid, k, v[:6000])
    for f in files:
        client.log_artifact(rid, str(f), "plots" if f.suffix == ".png" else None)
    client.set_terminated(rid)
    return str(rid)


def log_sweep_run(
    tracking_uri: str, experiment: str, cfg: Any, choice: dict[str, Any], files: list[Path]
) -> str:
    """One ``sweep`` run: each internal score logged against K (as the step), the chosen K.

    Args:
        tracking_uri: MLflow.
        experiment: its experiment.
        cfg: the run config (method, dataset, seed become tags; the config becomes params).
        choice: :meth:`dcflow.clustering.choose_k.KChoice.to_dict`.
        files: ``sweep.json`` and the plot.

    Returns:
        The run id.
    """
    from mlflow.entities import Metric

    client, uri = open_client(tracking_uri)
    try:
        exp_id = experiment_id_for(client, experiment or "dcflow", uri)
        tags = {
            "dcflow.kind": "sweep",
            "method": cfg.method,
            "dataset": cfg.dataset.name,
            "seed": str(cfg.seed),
            "criterion": choice["criterion"],
            "chosen_k": str(choice["k"]),
            "mlflow.note.content": choice["reason"],
        }
        run = client.create_run(exp_id, run_name=f"sweep-k-{cfg.method}", tags=tags)
        rid = run.info.run_id
        ts = int(time.time() * 1000)
        batch = [
            Metric(name, float(value), ts, int(k))
            for k, scores in choice["table"].items()
            for name, value in scores.items()
        ]
        batch.append(Metric("chosen_k", float(choice["k"]), ts, 0))
        for i in range(0, len(batch), 900):
            client.log_batch(rid, metrics=batch[i : i + 900])
        for f in files:
            client.log_artifact(rid, str(f))
        client.set_terminated(rid)
    except Exception as exc:  # noqa: BLE001 - one line for the user
        raise ServiceError(f"MLflow logging to {uri} failed: {str(exc)[:200]}") from None
    return str(rid)
