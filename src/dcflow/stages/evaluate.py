"""evaluate: metrics, predictions CSV, plots, and the MLflow parent + stage runs.

The only stage that reads ground-truth labels. Metrics of the final assignment and of the
cluster-init assignment (to show what refinement earned) are computed here.
"""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from dcflow import artifacts as art
from dcflow.clustering.metrics import (
    NMI_AVERAGE,
    cluster_metrics,
    contingency,
    hungarian_mapping,
)
from dcflow.config import flatten
from dcflow.data import Dataset
from dcflow.methods.registry import get_method
from dcflow.progress import emit
from dcflow.stages.common import finish, guard, load_run
from dcflow.stages.heldout import log_model, score_heldout
from dcflow.stages.labelfree import write_label_free
from dcflow.stages.predict import run_record


def write_predictions(
    path: Path,
    index: np.ndarray,
    y: np.ndarray | None,
    pred: np.ndarray,
    proba: np.ndarray | None,
    files: np.ndarray | None = None,
) -> None:
    """CSV ``index,label,cluster[,confidence][,file]``; ``label`` is empty without ground truth.

    ``file`` (``folder:``/``csv:`` data) is each image's path relative to the folder or list.
    """
    cols: list[list[object]] = [index.tolist(), [""] * pred.size if y is None else y.tolist()]
    cols.append(pred.tolist())
    header = ["index", "label", "cluster"]
    if proba is not None:
        header.append("confidence")
        cols.append([f"{c:.6f}" for c in proba.max(1)])
    if files is not None:
        header.append("file")
        cols.append(files.tolist())
    with art.atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(zip(*cols, strict=True))


def confusion_markdown(table: np.ndarray, title: str) -> str:
    """The confusion table (clusters in Hungarian order x classes) as a Markdown table."""
    head = "| cluster | " + " | ".join(f"class {c}" for c in range(table.shape[1])) + " |"
    rule = "|" + " --- |" * (table.shape[1] + 1)
    rows = [
        f"| {i} | " + " | ".join(str(int(v)) for v in row) + " |" for i, row in enumerate(table)
    ]
    return "\n".join([f"### {title}", "", head, rule, *rows]) + "\n"


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
        with art.atomic_path(out / art.CONFUSION_MD) as tmp:
            tmp.write_text(confusion_markdown(table, title))
        files.append(out / art.CONFUSION_MD)
    if z is not None:
        files.append(embedding_png(z, y if y is not None else pred, out / art.EMBEDDING_PNG, title))
    return files


def _params(config_json: str) -> dict[str, Any]:
    """MLflow params: run keys (``dataset.name``, ``seed``...) and method keys (``pretrain.lr``)."""
    run = json.loads(config_json)
    params = run.pop("params")
    run.pop("tags", None)  # tags go to MLflow as tags, not params
    return {**flatten(run), **flatten(params)}


def _optional(directory: str, name: str) -> np.ndarray | None:
    return art.load_npy(directory, name) if (Path(directory) / name).is_file() else None


def score(
    data: Dataset, init_dir: str, final_dir: str, out: Path, title: str
) -> tuple[dict[str, float], dict[str, float], dict[str, float], list[Path]]:
    """Final metrics (with labels), internal scores, cluster-init metrics, and the files.

    The files: predictions CSV, metrics JSON, the label-free outputs
    (:mod:`dcflow.stages.labelfree`) and the plots.
    """
    pred = art.load_npy(final_dir, art.LABELS)
    proba = _optional(final_dir, art.PROBA)
    metrics: dict[str, float] = {}
    init_metrics: dict[str, float] = {}
    if data.y is not None:
        metrics = cluster_metrics(data.y, pred, proba)
        init_metrics = cluster_metrics(data.y, art.load_npy(init_dir, art.LABELS))
        title += f": ACC {metrics['acc']:.3f} NMI {metrics['nmi']:.3f}"
    write_predictions(out / art.PREDICTIONS, data.index, data.y, pred, proba, data.files)
    embeddings = _optional(final_dir, art.EMBEDDINGS)
    internal, label_free = write_label_free(out, data, pred, proba, embeddings)
    summary = {"final": metrics, "cluster-init": init_metrics, "nmi_average": NMI_AVERAGE}
    art.save_json(out, art.METRICS, {**summary, "internal": internal})
    files = _plots(out, data.y, pred, embeddings, title)
    return (
        metrics,
        internal,
        init_metrics,
        [out / art.PREDICTIONS, out / art.METRICS, *label_free, *files],
    )


def _stage_table(reports: list[dict[str, Any]], init_metrics: dict[str, float]) -> dict[str, Any]:
    stages = {
        r["stage"]: {
            "seconds": r["seconds"],
            "skipped": r["skipped"],
            "metrics": dict(r["metrics"]),
        }
        for r in reports
    }
    if init_metrics and "cluster-init" in stages:
        stages["cluster-init"]["metrics"].update(init_metrics)
    return stages


def collect_curves(
    reports: list[dict[str, Any]],
    init_dir: str,
    final_dir: str,
    selection_dir: str = "",
    weights_uri: str = "",
) -> dict[str, dict[str, Any]]:
    """Per-step curves of every stage, read back from where the stages left them.

    Curves never travel in the ``reports`` parameter (it must not grow with the number of
    epochs): each stage writes them into its own artifact's ``report.json``, and pretrain stores
    them beside the weights (:func:`dcflow.storage.fetch_curves`), so a cached pretraining still
    shows the curves of the run that trained it.

    Returns:
        ``{stage: {key: [[step, value], ...]}}`` for the stages that recorded any.
    """
    from dcflow.storage import fetch_curves

    ran = {r["stage"] for r in reports}
    dirs = {"cluster-init": init_dir, "confident-sample-selection": selection_dir}
    if "refine" in ran:
        dirs["refine"] = final_dir
    out: dict[str, dict[str, Any]] = {}
    for stage, directory in dirs.items():
        path = Path(directory) / art.REPORT if directory else None
        if stage in ran and path is not None and path.is_file():
            curves = json.loads(path.read_text()).get("curves") or {}
            if curves:
                out[stage] = curves
    if "pretrain" in ran and weights_uri:
        curves = fetch_curves(weights_uri)
        if curves:
            out["pretrain"] = curves
    return out


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
    selection_dir: str = "",
    weights_uri: str = "",
    weights_sha256: str = "",
) -> dict[str, Any]:
    """Score the final assignment, write predictions and plots, log everything to MLflow.

    Args:
        config_json: the run config.
        init_dir: cluster-init artifact.
        final_dir: the final assignment's artifact (refine, or cluster-init without refine).
        reports: compact reports of the earlier stages (no curves).
        out_dir: this stage's artifact.
        tracking_uri: MLflow tracking URI ("" = the environment's or the local default).
        experiment: MLflow experiment.
        job_id: the KFP job name, tagged on the run.
        started: wall-clock start of the stage.
        selection_dir: confident-sample-selection artifact, when the method has that stage.
        weights_uri: the pretrained weights, beside which pretrain stored its curves.
        weights_sha256: their checksum (recorded in ``run.json`` for predict).
    """
    from dcflow import tracking

    started = started or time.time()
    emit("start evaluate")
    cfg, data = load_run(config_json)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    art.save_json(out, art.CONFIG, json.loads(config_json))
    title = f"{cfg.method} on {cfg.dataset.name} (seed {cfg.seed})"
    metrics, internal, init_metrics, files = score(data, init_dir, final_dir, out, title)
    curves = collect_curves(reports, init_dir, final_dir, selection_dir, weights_uri)
    record = run_record(
        config_json, init_dir, final_dir, out_dir, weights_uri, weights_sha256, data.n_clusters
    )
    art.save_json(out, art.RUN, record)
    root = Path(os.path.commonpath([Path(p).resolve() for p in (init_dir, final_dir, out_dir)]))
    heldout = score_heldout(cfg, root, record, out) if cfg.dataset.eval_split else None
    report = finish("evaluate", started, out, metrics)
    tags = {
        **cfg.tags,
        "method": cfg.method,
        "dataset": cfg.dataset.name,
        "seed": str(cfg.seed),
        "pipeline_job_id": job_id,
        "n_samples": str(data.n),
        "split": cfg.dataset.split,
        "proba_kind": get_method(cfg.method)(cfg).proba_kind(),
        **({"eval_split": heldout["split"]} if heldout else {}),
    }
    ids = tracking.log_or_defer(
        tracking_uri=tracking_uri,
        experiment=experiment,
        run_name=f"{cfg.method}-{cfg.dataset.name}-s{cfg.seed}",
        tags=tags,
        params=_params(config_json),
        metrics={
            **metrics,
            **{f"init_{k}": v for k, v in init_metrics.items()},
            **{f"internal_{k}": v for k, v in internal.items()},
            **{f"heldout_{k}": v for k, v in (heldout or {}).get("metrics", {}).items()},
        },
        stage_reports=[{**r, "curves": curves.get(r["stage"], {})} for r in [*reports, report]],
        files=[out / art.CONFIG, *files],
    )
    if ids.get("pending"):
        emit(f"  warning: MLflow logging failed ({ids['error']}); kept in {ids['pending']}")
    else:
        emit(f"  mlflow run {ids['run_id']} in experiment {ids['experiment_id']}")
        log_model(ids["tracking_uri"], ids["run_id"], root, record, out)
    report["seconds"] = round(time.time() - started, 3)  # MLflow logging is part of the stage
    art.save_json(out, art.REPORT, report)
    return {
        "method": cfg.method,
        "dataset": cfg.dataset.name,
        "n_samples": data.n,
        "seed": cfg.seed,
        "metrics": metrics,
        "internal": internal,
        "cluster_sizes": np.bincount(
            art.load_npy(final_dir, art.LABELS), minlength=data.n_clusters
        ).tolist(),
        **({"heldout": heldout} if heldout else {}),
        "stages": _stage_table([*reports, report], init_metrics),
        "mlflow": ids,
        "predictions": str((out / art.PREDICTIONS).resolve()),
        "evaluate_dir": str(out.resolve()),
    }


def kfp_outputs(
    summary: dict[str, Any], out_dir: str, log_metric: Any, confusion_path: str
) -> None:
    """KFP-native outputs of evaluate, so that the KFP UI shows results too.

    Args:
        summary: what :func:`evaluate` returned.
        out_dir: evaluate's artifact (holds ``confusion.md`` when there are labels).
        log_metric: ``Output[Metrics].log_metric``.
        confusion_path: path of the ``Output[Markdown]`` artifact.
    """
    for key, value in summary["metrics"].items():
        log_metric(key, float(value))
    source = Path(out_dir) / art.CONFUSION_MD
    text = source.read_text() if source.is_file() else "No labels: no confusion table.\n"
    Path(confusion_path).parent.mkdir(parents=True, exist_ok=True)
    Path(confusion_path).write_text(text)
