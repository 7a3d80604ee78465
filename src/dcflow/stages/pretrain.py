"""pretrain: train the backbone and publish its weights to the store; or, cached, verify them.

Either way later stages receive a (URI, sha256) pair and verify it again before loading.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from dcflow import artifacts as art
from dcflow.jobspec import JobSettings
from dcflow.progress import emit
from dcflow.stages import launch
from dcflow.stages.common import default_weights_store, finish, guard, weights_key
from dcflow.stages.runner import open_stage
from dcflow.storage import WeightsStore, fetch_weights
from dcflow.trainjob import run_job, shared_dir, worker_args


@guard
def pretrain(
    config_json: str, weights_store: str, out_dir: str, started: float | None = None
) -> dict[str, Any]:
    """Run the method's pretrain hook, save its weights, publish them to the store.

    Returns:
        ``weights_uri``, ``weights_sha256`` and the compact ``report``.
    """
    with open_stage("pretrain", config_json, out_dir, started=started, cached=False) as stage:
        method = stage.method
        launch.check_nproc(method, "pretrain")
        if method.run.nproc > 1:
            result = launch.pretrain_processes(config_json, method, stage.ctx)
        else:
            result = method.pretrain(stage.ctx)
        return _publish(stage, result, weights_store)


def _publish(stage: Any, result: Any, weights_store: str) -> dict[str, Any]:
    """Save the weights into the artifact, publish them to the store, write the report."""
    result.save(stage.out)
    method = stage.method
    key = weights_key(
        method.weights_name(),
        stage.data,
        method.weights_key_config(stage.data.n_clusters),
        stage.cfg.seed,
    )
    curves = stage.ctx.curves.to_dict()
    stored = WeightsStore(weights_store or default_weights_store()).publish(
        method.weights_name(), key, stage.out / art.WEIGHTS, curves=curves
    )
    emit(f"  weights stored: {stored.uri}")
    report = finish("pretrain", stage.started, stage.out, result.metrics, curves)
    return {"weights_uri": stored.uri, "weights_sha256": stored.sha256, "report": report}


@guard
def pretrain_job(
    config_json: str,
    weights_store: str,
    out_dir: str,
    job_json: str,
    job_name: str,
    started: float | None = None,
    api: Any = None,
) -> dict[str, Any]:
    """Pretrain as a Kubeflow Trainer job (``compile.py --workers``): submit, wait, publish.

    The run config goes to ``<mount>/<job_name>/config.json`` on the shared volume; every worker
    runs ``torchrun -m dcflow.stages.train_worker pretrain`` on it, rank 0 writes the weights to
    ``<mount>/<job_name>/out``; this task reads them back and publishes them like
    :func:`pretrain`. A failed job fails this task with the job's message.

    Returns:
        ``weights_uri``, ``weights_sha256`` and the compact ``report``.
    """
    settings = JobSettings.from_dict(json.loads(job_json))
    with open_stage("pretrain", config_json, out_dir, started=started, cached=False) as stage:
        launch.check_nproc(stage.method, "pretrain", nproc=2)
        with shared_dir(settings, job_name) as shared:
            (shared / "config.json").write_text(config_json)
            args = worker_args("pretrain", str(shared / "config.json"), str(shared / "out"))
            run_job(job_name, settings, args, api=api, log=emit)
            result = launch.read_back(shared / "out", stage.ctx)
            return _publish(stage, result, weights_store)


@guard
def verify_cached(
    weights_uri: str, weights_sha256: str, started: float | None = None
) -> dict[str, Any]:
    """On a cache hit: fetch the stored weights and check their sha256; pretrain is skipped."""
    started = started or time.time()
    emit("start pretrain (cached: verifying weights)")
    with tempfile.TemporaryDirectory(prefix="dcflow-verify-") as tmp:
        fetch_weights(weights_uri, weights_sha256, Path(tmp) / art.WEIGHTS)
    return finish("pretrain", started, None, {}, skipped=True)
