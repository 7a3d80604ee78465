"""Run a stage's training hook in ``nproc`` processes under torchrun, on this machine.

The stage process (a kfp.local task, a container) stays the one that reads inputs and writes the
artifact. For ``run.nproc > 1`` it starts ``torchrun --standalone --nproc_per_node N -m
dcflow.stages.train_worker``: every worker rebuilds the same stage context from the run config,
joins the process group (gloo on CPU, nccl on CUDA, one device per process), and calls the same
hook as one process would; rank 0 saves the hook's output and curves into a temporary directory,
which this module loads back. On a cluster, the pipeline runs the same worker module as a Kubeflow
Trainer job instead (pipelines/trainer_job.py).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, TypeVar

from dcflow import artifacts as art
from dcflow.errors import ConfigError, StageError
from dcflow.handoff import ClusterInitOut, PretrainOut, RefineOut
from dcflow.methods.base import Method, StageContext
from dcflow.models.state import load_state
from dcflow.progress import emit

T = TypeVar("T", ClusterInitOut, RefineOut)
CURVES_FILE = "curves.json"
METRICS_FILE = "metrics.json"
EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt): ")


def check_nproc(method: Method, stage: str, nproc: int | None = None) -> None:
    """Raise :class:`ConfigError` when ``stage`` is asked for processes it cannot use.

    Args:
        method: the run's method.
        stage: the stage.
        nproc: the processes asked for (default: the run's ``nproc``).
    """
    nproc = method.run.nproc if nproc is None else nproc
    if nproc > 1 and stage not in method.data_parallel:
        raise ConfigError(
            f"{method.name} does not train its {stage} stage data-parallel; "
            f"--nproc and --workers apply to: {data_parallel_methods()}"
        )


def data_parallel_methods() -> str:
    """Comma-separated names of the methods with at least one data-parallel stage."""
    from dcflow.methods.registry import get_method, method_names

    return ", ".join(n for n in method_names() if get_method(n).data_parallel)


def worker_error(output: str) -> str:
    """The one line that says why a worker failed.

    Its ``dcflow: error:`` line, else the last Python exception line, else a pointer to the log.
    """
    lines = output.splitlines()
    for line in lines:
        if "dcflow: error: " in line:
            return line.split("dcflow: error: ", 1)[1].strip()
    crashes = [ln.strip() for ln in lines if EXCEPTION_LINE.match(ln.strip())]
    crashes = [ln for ln in crashes if "ChildFailedError" not in ln]
    return crashes[-1] if crashes else "see the stage log for the workers' output"


def worker_command(
    stage: str, config_path: Path, out: Path, nproc: int, extra: tuple[str, ...] = ()
) -> list[str]:
    """The torchrun command line that runs ``stage``'s hook in ``nproc`` local processes."""
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        "--nproc_per_node", str(nproc),
        "-m", "dcflow.stages.train_worker", stage, str(config_path), str(out), *extra,
    ]  # fmt: skip


def _run_workers(
    stage: str, config_json: str, method: Method, tmp: Path, extra: tuple[str, ...]
) -> Path:
    """Run ``stage``'s hook in ``method.run.nproc`` processes; rank 0's output directory.

    Raises:
        StageError: a worker failed; the message ends with the tail of its output.
    """
    nproc = method.run.nproc
    emit(f"  {stage} in {nproc} processes (torchrun, global batch split {nproc} ways)")
    cfg_path, out = tmp / "config.json", tmp / "out"
    cfg_path.write_text(config_json)
    env = {**os.environ, "OMP_NUM_THREADS": str(method.run.threads or 1)}
    proc = subprocess.run(
        worker_command(stage, cfg_path, out, nproc, extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        check=False,
    )
    print(proc.stdout, file=sys.stderr, flush=True)  # the stage log keeps all of it
    if proc.returncode != 0:
        raise StageError(
            f"{stage} in {nproc} processes failed (exit code {proc.returncode}): "
            + worker_error(proc.stdout)
        )
    return out


def pretrain_processes(config_json: str, method: Method, ctx: StageContext) -> PretrainOut:
    """The pretrain hook's output, computed by ``method.run.nproc`` processes under torchrun."""
    with tempfile.TemporaryDirectory(prefix="dcflow-ddp-") as tmp:
        out = _run_workers("pretrain", config_json, method, Path(tmp), ())
        return read_back(out, ctx)


def refine_processes(
    config_json: str, method: Method, ctx: StageContext, init_dir: str, selection_dir: str
) -> RefineOut:
    """The refine hook's output, computed by ``method.run.nproc`` processes under torchrun.

    The workers read the cluster-init (and selection) artifacts and the weights this stage
    already verified.
    """
    extra = (init_dir, selection_dir, str(ctx.weights or ""))
    with tempfile.TemporaryDirectory(prefix="dcflow-ddp-") as tmp:
        out = _run_workers("refine", config_json, method, Path(tmp), extra)
        return load_refine(out, ctx)


def cluster_init_processes(config_json: str, method: Method, ctx: StageContext) -> ClusterInitOut:
    """The cluster-init hook's output, computed by ``method.run.nproc`` processes (SCAN, RUC).

    The workers read the weights this stage already verified.
    """
    with tempfile.TemporaryDirectory(prefix="dcflow-ddp-") as tmp:
        weights = (str(ctx.weights or ""),)
        out = _run_workers("cluster-init", config_json, method, Path(tmp), weights)
        return load_output(ClusterInitOut, out, ctx)


def load_refine(out: Path, ctx: StageContext) -> RefineOut:
    """Rank 0's saved refine output (metrics included), with its curves added to ``ctx.curves``."""
    return load_output(RefineOut, out, ctx)


def load_output(kind: type[T], out: Path, ctx: StageContext) -> T:
    """Rank 0's saved ``kind`` output (metrics included); its curves are added to ``ctx.curves``."""
    add_curves(out, ctx)
    result = kind.load(out)
    result.metrics = json.loads((out / METRICS_FILE).read_text())
    return result


def add_curves(out: Path, ctx: StageContext) -> None:
    """Rank 0's saved curves, added to ``ctx.curves``."""
    for key, points in json.loads((out / CURVES_FILE).read_text()).items():
        for step, value in points:
            ctx.curves.log(step, **{key: value})


def read_back(out: Path, ctx: StageContext) -> PretrainOut:
    """Rank 0's saved output, with its curves added to ``ctx.curves``."""
    result = load_pretrain(out)
    add_curves(out, ctx)
    return result


def save_output(
    result: PretrainOut | ClusterInitOut | RefineOut, curves: dict[str, Any], out: Path
) -> None:
    """Rank 0's side: the hook's output, its metrics and the curves, for the stage to load."""
    result.save(out)
    (out / METRICS_FILE).write_text(json.dumps(result.metrics))
    (out / CURVES_FILE).write_text(json.dumps(curves))


def load_pretrain(out: Path) -> PretrainOut:
    """The :class:`PretrainOut` rank 0 saved (weights loaded with ``weights_only=True``)."""
    weights = load_state(out / art.WEIGHTS, "distributed pretrain weights")
    return PretrainOut(weights, json.loads((out / METRICS_FILE).read_text()))
