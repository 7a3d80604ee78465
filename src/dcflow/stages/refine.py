"""refine: the method's (semi-)supervised refinement, from cluster-init and the selection."""

from __future__ import annotations

import json
from typing import Any

from dcflow.handoff import ClusterInitOut, SelectionOut
from dcflow.jobspec import JobSettings
from dcflow.progress import emit
from dcflow.stages import launch
from dcflow.stages.common import guard
from dcflow.stages.runner import open_stage
from dcflow.trainjob import run_job, shared_dir, stage_inputs, worker_args


@guard
def refine(
    config_json: str,
    init_dir: str,
    out_dir: str,
    selection_dir: str = "",
    weights_uri: str = "",
    weights_sha256: str = "",
    started: float | None = None,
) -> dict[str, Any]:
    """Run the method's refine hook; save its :class:`~dcflow.handoff.RefineOut`.

    Args:
        config_json: the run config.
        init_dir: the cluster-init artifact.
        out_dir: this stage's artifact.
        selection_dir: the selection artifact ("" for methods without that stage).
        weights_uri: the pretrained weights.
        weights_sha256: their checksum.
        started: wall-clock start.

    Returns:
        The stage's compact report.
    """
    inputs = {"cluster-init": init_dir}
    if selection_dir:
        inputs["confident-sample-selection"] = selection_dir
    with open_stage(
        "refine", config_json, out_dir, inputs, weights_uri, weights_sha256, started
    ) as stage:
        if stage.reused is not None:
            return stage.reused
        method = stage.method
        if method.run.nproc > 1 and "refine" in method.data_parallel:
            args = (init_dir, selection_dir)
            return stage.close(launch.refine_processes(config_json, method, stage.ctx, *args))
        init = ClusterInitOut.load(init_dir)
        selection = SelectionOut.load(selection_dir) if selection_dir else None
        return stage.close(method.refine(stage.ctx, init, selection))


@guard
def refine_job(
    config_json: str,
    init_dir: str,
    out_dir: str,
    selection_dir: str,
    weights_uri: str,
    weights_sha256: str,
    job_json: str,
    job_name: str,
    started: float | None = None,
    api: Any = None,
) -> dict[str, Any]:
    """Refine as a Kubeflow Trainer job (``compile.py --workers``): stage inputs, submit, wait.

    The run config, the cluster-init (and selection) artifacts and the verified weights go to
    ``<mount>/<job_name>/`` on the shared volume; every worker runs ``torchrun -m
    dcflow.stages.train_worker refine`` on them, rank 0 writes the refine artifact to
    ``<mount>/<job_name>/out``, which this task reads back and saves as its own output. A failed
    job fails this task with the job's message.

    Returns:
        The stage's compact report.
    """
    settings = JobSettings.from_dict(json.loads(job_json))
    inputs = {"cluster-init": init_dir}
    if selection_dir:
        inputs["confident-sample-selection"] = selection_dir
    with open_stage(
        "refine", config_json, out_dir, inputs, weights_uri, weights_sha256, started, cached=False
    ) as stage:
        launch.check_nproc(stage.method, "refine", nproc=2)
        with shared_dir(settings, job_name) as shared:
            dirs = {"init": init_dir, "selection": selection_dir}
            staged = stage_inputs(shared, config_json, stage.ctx.weights, dirs)
            run_job(job_name, settings, worker_args("refine", *staged), api=api, log=emit)
            return stage.close(launch.load_refine(shared / "out", stage.ctx))
