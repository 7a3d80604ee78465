"""sweep-k: one cluster-init per candidate K, scored without labels, and the choice of K.

The sweep pipeline (``pipelines/sweep.py``) shares one pretrain across all Ks (a ``ParallelFor``
over the Ks of cluster-init), except for methods whose pretrained weights depend on K
(``Method.pretrain_uses_k``: CC and ULDC train the cluster head in pretrain), which pretrain once
per K. Each point is scored by the internal criteria of :mod:`dcflow.clustering.internal` on the
embedding its cluster-init produced; :func:`summarise` picks K (:mod:`dcflow.clustering.choose_k`),
writes ``sweep.json`` and ``sweep_k.png`` and logs them to MLflow. No stage here reads labels.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from dcflow import artifacts as art
from dcflow.clustering.choose_k import choose_k
from dcflow.clustering.internal import internal_scores
from dcflow.config import RunConfig
from dcflow.handoff import ClusterInitOut
from dcflow.plots import sweep_png
from dcflow.progress import emit
from dcflow.stages.cluster_init import cluster_init
from dcflow.stages.common import guard

SWEEP_JSON = "sweep.json"
SWEEP_PNG = "sweep_k.png"


def config_for_k(config_json: str, k: int) -> str:
    """The run config with ``dataset.n_clusters = k`` (validated again)."""
    data = json.loads(config_json)
    data["dataset"]["n_clusters"] = int(k)
    return RunConfig.model_validate(data).to_json()


def plan_points(
    config_json: str, ks: list[int], weights_uri: str, weights_sha256: str
) -> list[str]:
    """The sweep's loop items: one JSON ``{config, weights_uri, weights_sha256}`` per K."""
    return [
        json.dumps(
            {
                "config": config_for_k(config_json, int(k)),
                "weights_uri": weights_uri,
                "weights_sha256": weights_sha256,
            }
        )
        for k in ks
    ]


@guard
def sweep_point(
    config_json: str,
    out_dir: str,
    weights_uri: str = "",
    weights_sha256: str = "",
    started: float | None = None,
) -> dict[str, Any]:
    """Cluster-init at this config's K, then its internal scores on its own embedding.

    Returns:
        ``k``, ``scores`` (:func:`~dcflow.clustering.internal.internal_scores`), ``sizes``
        (cluster sizes) and ``seconds``.
    """
    started = started or time.time()
    k = int(RunConfig.from_json(config_json).dataset.n_clusters or 0)
    cluster_init(config_json, out_dir, weights_uri, weights_sha256, started=started)
    init = ClusterInitOut.load(out_dir)
    labels = np.asarray(init.labels)
    z = init.embeddings if init.embeddings is not None else init.proba
    scores = internal_scores(z, labels, k)
    sizes = np.bincount(labels, minlength=k).tolist()
    shown = " ".join(f"{c}={v:.4g}" for c, v in scores.items())
    emit(f"  K={k}: {shown}")
    return {"k": k, "scores": scores, "sizes": sizes, "seconds": round(time.time() - started, 3)}


@guard
def summarise(
    config_json: str,
    points: list[str] | list[dict[str, Any]],
    criterion: str,
    out_dir: str,
    tracking_uri: str = "",
    experiment: str = "",
) -> dict[str, Any]:
    """Choose K from the sweep's points; write and log ``sweep.json`` and ``sweep_k.png``.

    Args:
        config_json: the run config (method, dataset, seed: for tags and titles).
        points: :func:`sweep_point` results (dicts, or their JSON as KFP collects them).
        criterion: what K is chosen by (:data:`~dcflow.clustering.choose_k.CRITERIA`).
        out_dir: where the two files go.
        tracking_uri: MLflow; empty skips logging.
        experiment: MLflow experiment of the sweep run.

    Returns:
        :meth:`KChoice.to_dict` plus ``points`` and ``mlflow_run_id``.
    """
    emit("start choose-k")
    cfg = RunConfig.from_json(config_json)
    rows = [json.loads(p) if isinstance(p, str) else p for p in points]
    table = {int(r["k"]): r["scores"] for r in rows}
    choice = choose_k(table, criterion)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = {**choice.to_dict(), "points": sorted(rows, key=lambda r: int(r["k"]))}
    art.save_json(out, SWEEP_JSON, result)
    title = f"{cfg.method} on {Path(cfg.dataset.name).name}"
    png = sweep_png(choice.table, choice.k, choice.criterion, out / SWEEP_PNG, title)
    result["mlflow_run_id"] = ""
    if tracking_uri:
        from dcflow.tracking import log_sweep_run

        result["mlflow_run_id"] = log_sweep_run(
            tracking_uri,
            experiment,
            cfg,
            choice.to_dict(),
            [out / SWEEP_JSON, png],
        )
    emit(f"chosen K={choice.k}: {choice.reason}")
    return result
