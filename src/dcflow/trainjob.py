"""Training stages as Kubeflow Trainer jobs: submission, waiting, failure as an error.

``compile.py --workers N --gpus-per-worker G`` replaces a method's data-parallel pretrain task by a
launcher task that calls :func:`run_job`. The job (:mod:`dcflow.jobspec`: a ``TrainJob``, or a
``PyTorchJob`` on older installs) runs ``torchrun -m dcflow.stages.train_worker pretrain CONFIG
OUT`` on every worker (the same training function as ``dcflow run --nproc``).

The shared volume (a ReadWriteMany PVC) carries the run config in and rank 0's weights out; the
launcher mounts it too, reads the weights back and publishes them as the pretrain stage does.
Only :func:`run_job` talks to Kubernetes (the ``kubernetes`` client, imported there).
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from dcflow.errors import StageError
from dcflow.jobspec import API, JobSettings, job_state, manifest


@contextlib.contextmanager
def shared_dir(settings: JobSettings, job_name: str) -> Iterator[Path]:
    """``<mount>/<job_name>/`` on the shared volume, for one job's files; removed after."""
    shared = Path(settings.mount_path) / job_name
    shared.mkdir(parents=True, exist_ok=True)
    try:
        yield shared
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def stage_inputs(
    shared: Path, config_json: str, weights: Path | None, dirs: dict[str, str]
) -> tuple[str, ...]:
    """Copy what a job's workers read onto the shared volume; their stage arguments.

    Args:
        shared: this job's directory on the shared volume (:func:`shared_dir`).
        config_json: the run config, written as ``config.json``.
        weights: the verified weights, copied as ``weights.pt`` (none: ``""``).
        dirs: artifact directories by name, copied under that name (``""``: absent).

    Returns:
        ``(config, out, *dirs, weights)`` paths, in the order :mod:`dcflow.stages.train_worker`
        reads them.
    """
    (shared / "config.json").write_text(config_json)
    copied = []
    for name, src in dirs.items():
        if src:
            shutil.copytree(src, shared / name)
        copied.append(str(shared / name) if src else "")
    if weights is not None:
        shutil.copyfile(weights, shared / "weights.pt")
    staged_weights = str(shared / "weights.pt") if weights is not None else ""
    return (str(shared / "config.json"), str(shared / "out"), *copied, staged_weights)


def worker_args(stage: str, config_path: str, out: str, *extra: str) -> list[str]:
    """What each worker runs after ``torchrun``: the dcflow training worker of ``stage``.

    ``extra``: cluster-init's weights; refine's cluster-init and selection directories and
    weights; all on the shared volume.
    """
    return ["-m", "dcflow.stages.train_worker", stage, config_path, out, *extra]


def own_namespace() -> str:
    """The namespace of the pod this runs in (its service-account mount), else ``default``."""
    path = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
    return path.read_text().strip() if path.is_file() else "default"


def _custom_objects_api() -> Any:
    try:
        from kubernetes import client, config
    except ImportError:
        raise StageError("the kubernetes client is not installed in this image") from None
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.CustomObjectsApi()


def run_job(
    name: str,
    settings: JobSettings,
    args: list[str],
    api: Any = None,
    sleep: Callable[[float], None] = time.sleep,
    log: Callable[[str], None] = print,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Create the job, wait until it ends, and raise if it failed.

    Args:
        name: the job's name (unique per task: KFP's pod name is a good one).
        settings: the job settings.
        args: torchrun's arguments (:func:`worker_args`).
        api: a ``kubernetes.client.CustomObjectsApi`` (default: in-cluster, else kubeconfig).
        sleep: the wait between polls (tests pass a no-op).
        log: where status changes are reported.
        clock: seconds for the timeout (tests pass a fake).

    Raises:
        StageError: the API refused the job (no CRD, no permission), the job failed (its
            condition message is in the error; the job is kept for ``kubectl describe``), or it
            ran past ``timeout_seconds`` (then it is deleted).
    """
    group, version, plural, kind = API[settings.kind]
    namespace = settings.namespace or own_namespace()
    api = api or _custom_objects_api()
    body = manifest(name, settings, args)
    try:
        api.create_namespaced_custom_object(group, version, namespace, plural, body)
    except Exception as exc:  # noqa: BLE001 - ApiException and transport errors alike
        status = getattr(exc, "status", 0)
        hints = {
            404: f"is the {kind} CRD installed?",
            403: f"may the task's service account create {plural}.{group}? (chart: trainer.rbac)",
        }
        detail = f"{status} {hints.get(status, '')}" if status else type(exc).__name__
        raise StageError(f"cannot create {kind} {namespace}/{name}: {detail.strip()}") from None
    log(f"  {kind} {namespace}/{name}: {settings.workers} workers x {settings.procs_per_worker}")
    started, last = clock(), ""
    while True:
        obj = api.get_namespaced_custom_object(group, version, namespace, plural, name)
        state, message = job_state(settings.kind, obj)
        if state != last:
            log(f"  {kind} {name}: {state}")
            last = state
        if state == "succeeded":
            return
        if state == "failed":
            raise StageError(f"{kind} {namespace}/{name} failed: {message}")
        if settings.timeout_seconds and clock() - started > settings.timeout_seconds:
            api.delete_namespaced_custom_object(group, version, namespace, plural, name)
            raise StageError(
                f"{kind} {namespace}/{name} ran past {settings.timeout_seconds} s; deleted"
            )
        sleep(settings.poll_seconds)
