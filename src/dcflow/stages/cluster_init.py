"""cluster-init: the initial clustering, from the verified pretrained weights."""

from __future__ import annotations

import json
from typing import Any

from dcflow.handoff import ClusterInitOut
from dcflow.jobspec import JobSettings
from dcflow.progress import emit
from dcflow.stages import launch
from dcflow.stages.common import guard
from dcflow.stages.runner import open_stage
from dcflow.trainjob import run_job, shared_dir, stage_inputs, worker_args


@guard
def cluster_init(
    config_json: str,
    out_dir: str,
    weights_uri: str = "",
    weights_sha256: str = "",
    started: float | None = None,
) -> dict[str, Any]:
    """Run the method's cluster-init hook and save its :class:`~dcflow.handoff.ClusterInitOut`.

    Returns:
        The stage's compact report (seconds, metrics; curves stay in the artifact).
    """
    with open_stage(
        "cluster-init", config_json, out_dir, {}, weights_uri, weights_sha256, started
    ) as stage:
        if stage.reused is not None:
            return stage.reused
        method = stage.method
        if method.run.nproc > 1 and "cluster-init" in method.data_parallel:
            return stage.close(launch.cluster_init_processes(config_json, method, stage.ctx))
        return stage.close(method.cluster_init(stage.ctx))


@guard
def cluster_init_job(
    config_json: str,
    out_dir: str,
    weights_uri: str,
    weights_sha256: str,
    job_json: str,
    job_name: str,
    started: float | None = None,
    api: Any = None,
) -> dict[str, Any]:
    """cluster-init as a Kubeflow Trainer job (``compile.py --workers``; SCAN, RUC).

    The run config and the verified weights go to ``<mount>/<job_name>/`` on the shared volume;
    every worker runs ``torchrun -m dcflow.stages.train_worker cluster-init`` on them, rank 0
    writes the artifact to ``<mount>/<job_name>/out``, which this task reads back and saves as
    its own output. A failed job fails this task with the job's message.

    Returns:
        The stage's compact report.
    """
    settings = JobSettings.from_dict(json.loads(job_json))
    with open_stage(
        "cluster-init", config_json, out_dir, {}, weights_uri, weights_sha256, started,
        cached=False,
    ) as stage:  # fmt: skip
        launch.check_nproc(stage.method, "cluster-init", nproc=2)
        with shared_dir(settings, job_name) as shared:
            staged = stage_inputs(shared, config_json, stage.ctx.weights, {})
            run_job(job_name, settings, worker_args("cluster-init", *staged), api=api, log=emit)
            result = launch.load_output(ClusterInitOut, shared / "out", stage.ctx)
            return stage.close(result)
