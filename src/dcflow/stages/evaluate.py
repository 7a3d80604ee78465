"""evaluate: metrics, predictions CSV, plots, and the MLflow parent + stage runs.

The only stage that reads ground-truth labels. Metrics of the final assignment and of the
cluster-init assignment (to show what refinement earned) are computed here.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from dcflow import artifacts as art
from dcflow.clustering.metrics import cluster_metrics, contingency, hungarian_mapping
from dcflow.config import flatten
from dcflow.progress import emit
from dcflow.stages.common import finish, guard, load_run


def write_predictions(
    path: Path, index: np.ndarray, y: np.ndarray | None, pred: np.ndarray, proba: np.ndarray | None
) -> None:
    """CSV ``index,label,cluster[,confidence]``; ``label`` is empty without ground truth."""
    with art.atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            ["index", "label", "cluster"] + (["confidence"] if proba is not None else [])
        )
        conf = proba.max(1) if proba is not None else None
        for i in range(pred.size):
            row = [int(index[i]), "" if y is None else int(y[i]), int(pred[i])]
            writer.writerow(row + ([f"{conf[i]:.6f}"] if conf is not None else []))


def _plots(
    out: Path, y: np.ndarray | None, pred: np.ndarray, z: np.ndarray | None, title: str
) -> list[Path]:
    from dcflow.plots import confusion_png, embedding_png

    files = []
    if y is not None:
        mapping = hungarian_mapping(y, pred)
        order = sorted(range(int(pred.max()) + 1), key=lambda p: (mapping[p] < 0, mapping[p]))
        table = contingency(y, pred)[order]
        files.append(confusion_png(table, out / art.CONFUSION_PNG, title))
    if z is not None:
        files.append(embedding_png(z, y if y is not None else pred, out / art.EMBEDDING_PNG, title))
    return files


def _params(config_json: str) -> dict[str, Any]:
    """MLflow params: run keys (``dataset.name``, ``seed``...) and method keys (``pretrain.lr``)."""
    run = json.loads(config_json)
    params = run.pop("params")
    return {**flatten(run), **flatten(params)}


@guard
def evaluate(
    config_json: str,
    init_dir: str,
    final_dir: str,
    reports: list[dict[str, Any]],
    out_dir: str,
    tracking_uri: str = "",
    experiment: str = "dcflow",
    job_id: str = "",
    started: float | None = None,
) -> dict[str, Any]:
    """Score the final assignment, write predictions and plots, log everything to MLflow."""
    started = started or time.time()
    emit("start evaluate")
    cfg, data = load_run(config_json)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pred = art.load_npy(final_dir, art.LABELS)
    proba_path = Path(final_dir) / art.PROBA
    proba = art.load_npy(final_dir, art.PROBA) if proba_path.is_file() else None
    z_path = Path(final_dir) / art.EMBEDDINGS
    z = art.load_npy(final_dir, art.EMBEDDINGS) if z_path.is_file() else None
    metrics: dict[str, float] = {}
    init_metrics: dict[str, float] = {}
    if data.y is not None:
        metrics = cluster_metrics(data.y, pred, proba)
        init_metrics = cluster_metrics(data.y, art.load_npy(init_dir, art.LABELS))
    write_predictions(out / art.PREDICTIONS, data.index, data.y, pred, proba)
    art.save_json(
        out,
        art.METRICS,
        {"final": metrics, "cluster-init": init_metrics, "nmi_average": "arithmetic"},
    )
    art.save_json(out, art.CONFIG, json.loads(config_json))
    title = f"{cfg.method} on {cfg.dataset.name} (seed {cfg.seed})"
    if metrics:
        title += f": ACC {metrics['acc']:.3f} NMI {metrics['nmi']:.3f}"
    files = _plots(out, data.y, pred, z, title)
    report = finish("evaluate", started, out, metrics)
    all_reports = [*reports, report]
    from dcflow import tracking

    ids = tracking.log_pipeline_run(
        tracking_uri=tracking_uri,
        experiment=experiment,
        run_name=f"{cfg.method}-{cfg.dataset.name}-s{cfg.seed}",
        tags={
            "method": cfg.method,
            "dataset": cfg.dataset.name,
            "seed": str(cfg.seed),
            "pipeline_job_id": job_id,
            "n_samples": str(data.n),
        },
        params=_params(config_json),
        metrics={**metrics, **{f"init_{k}": v for k, v in init_metrics.items()}},
        stage_reports=all_reports,
        files=[out / art.PREDICTIONS, out / art.CONFIG, out / art.METRICS, *files],
    )
    emit(f"  mlflow run {ids['run_id']} in experiment {ids['experiment_id']}")
    report["seconds"] = round(time.time() - started, 3)  # MLflow logging is part of the stage
    art.save_json(out, art.REPORT, report)
    stages = {
        r["stage"]: {"seconds": r["seconds"], "skipped": r["skipped"], "metrics": r["metrics"]}
        for r in all_reports
    }
    if init_metrics and "cluster-init" in stages:
        stages["cluster-init"]["metrics"].update(init_metrics)
    return {
        "method": cfg.method,
        "dataset": cfg.dataset.name,
        "n_samples": data.n,
        "seed": cfg.seed,
        "metrics": metrics,
        "stages": stages,
        "mlflow": ids,
        "predictions": str((out / art.PREDICTIONS).resolve()),
        "evaluate_dir": str(out.resolve()),
    }
