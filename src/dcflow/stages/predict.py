"""predict: assign new images with a finished run's model, no re-training.

A finished run is described by the ``run.json`` that evaluate writes beside its outputs (the run
config, where the cluster-init and refine artifacts are relative to the run, and the pretrained
weights with their sha256). :func:`predict` is the stage (and the KFP component's body);
:func:`predict_arrays` is what ``dcflow predict``, evaluate's held-out split and the MLflow model
call.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from dcflow import artifacts as art
from dcflow.config import DatasetConfig, RunConfig
from dcflow.errors import ConfigError
from dcflow.handoff import ClusterInitOut, PredictOut, RefineOut
from dcflow.stages.common import finish, guard
from dcflow.stages.runner import open_stage


def run_record(
    config_json: str,
    init_dir: str,
    final_dir: str,
    out_dir: str,
    weights_uri: str,
    weights_sha256: str,
    n_clusters: int,
) -> dict[str, Any]:
    """What ``run.json`` holds: artifact paths relative to the run's root (the stages' parent).

    Args:
        config_json: the run config.
        init_dir: the cluster-init artifact.
        final_dir: the final artifact (refine's, or ``init_dir`` without refine).
        out_dir: evaluate's artifact, where ``run.json`` goes.
        weights_uri: the pretrained weights ("" for methods without pretrain).
        weights_sha256: their checksum.
        n_clusters: the run's K (new data may have no labels, or other classes).
    """
    init, final, out = (Path(p).resolve() for p in (init_dir, final_dir, out_dir))
    root = Path(os.path.commonpath([init, final, out]))
    return {
        "format": 1,
        "config": json.loads(config_json),
        "init": init.relative_to(root).as_posix(),
        "final": final.relative_to(root).as_posix() if final != init else "",
        "weights_uri": weights_uri,
        "weights_sha256": weights_sha256,
        "n_clusters": n_clusters,
    }


def find_run(path: str | Path) -> tuple[Path, dict[str, Any]]:
    """``(run root, run.json)`` of a run directory (its root, or any directory holding run.json).

    Raises:
        ConfigError: no run.json below ``path``.
    """
    p = Path(path).expanduser().resolve()
    found = [p / art.RUN] if (p / art.RUN).is_file() else sorted(p.rglob(art.RUN))
    if not found:
        raise ConfigError(f"{p} holds no finished dcflow run ({art.RUN} is written by evaluate)")
    record = json.loads(found[-1].read_text())
    root = found[-1].parent
    while root != root.parent and not (root / record["init"]).is_dir():
        root = root.parent
    if not (root / record["init"]).is_dir():
        raise ConfigError(f"{found[-1]}: the cluster-init artifact {record['init']} is missing")
    return root, record


def predict_arrays(
    root: Path, record: dict[str, Any], dataset: dict[str, Any], out_dir: str | Path
) -> PredictOut:
    """Assign the images of ``dataset`` (a ``DatasetConfig`` dict) with the run in ``root``."""
    cfg = RunConfig.model_validate(record["config"])
    data_cfg = DatasetConfig.model_validate({**dataset, "n_clusters": run_clusters(root, record)})
    cfg = cfg.model_copy(update={"dataset": data_cfg})
    weights = record["weights_uri"]
    if weights and "://" not in weights and not Path(weights).is_absolute():
        weights = str(root / weights)  # a bundle's weights lie beside its run.json
    return predict(
        cfg.to_json(),
        str(root / record["init"]),
        str(root / record["final"]) if record["final"] else "",
        str(out_dir),
        weights,
        record["weights_sha256"],
    )


def run_clusters(root: Path, record: dict[str, Any]) -> int:
    """The run's number of clusters (new data may lack labels, or hold other classes)."""
    if record.get("n_clusters"):
        return int(record["n_clusters"])
    k = record["config"]["dataset"].get("n_clusters")
    if k:
        return int(k)
    raise ConfigError("the run's run.json does not say its number of clusters; re-run evaluate")


@guard
def predict(
    config_json: str,
    init_dir: str,
    final_dir: str,
    out_dir: str,
    weights_uri: str = "",
    weights_sha256: str = "",
    started: float | None = None,
) -> PredictOut:
    """Run the method's predict hook on the config's dataset; save and return its output."""
    started = started or time.time()
    with open_stage(
        "predict", config_json, out_dir, None, weights_uri, weights_sha256, started,
        cached=False, declared=False,
    ) as stage:  # fmt: skip
        init = ClusterInitOut.load(init_dir)
        final = RefineOut.load(final_dir) if final_dir else None
        result = stage.method.predict(stage.ctx, init, final)
        if result.proba is not None and "mean_confidence" not in result.metrics:
            conf = np.asarray(result.proba).max(1)
            result.metrics["mean_confidence"] = float(conf.mean())
        result.save(stage.out)
        finish("predict", started, stage.out, result.metrics)
    return result
