"""Kubeflow Trainer job manifests: what a multi-worker training task submits, and how it ended.

Pure data, no Kubernetes client (:mod:`dcflow.trainjob` submits and waits):

- ``trainjob`` (Kubeflow Trainer v2, ``trainer.kubeflow.org/v1alpha1``): the ``torch-distributed``
  ClusterTrainingRuntime by default; ``spec.trainer`` sets the image, command, ``numNodes``,
  ``numProcPerNode`` and ``resourcesPerNode``; a ``runtimePatches`` entry mounts the shared volume
  into the runtime's ``node`` job. Trainer sets the ``PET_*`` variables torchrun reads.
- ``pytorchjob`` (training-operator v1, ``kubeflow.org/v1``), for older installs: one Master and
  ``N - 1`` Worker replicas with ``nprocPerNode``; the operator sets torchrun's rendezvous.

Secrets and ConfigMaps reach the workers by name (``secretKeyRef``, ``configMapKeyRef``), never by
value. ``tests/pipelines`` validates both manifests against the CRDs' schemas.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from dcflow.errors import ConfigError

JobKind = Literal["trainjob", "pytorchjob"]
CONTAINER = "node"  # the container (and replicated job) name of Trainer's torch runtimes
PATCH_MANAGER = "dcflow.io/pipeline"
GPU_RESOURCE = "nvidia.com/gpu"
API = {
    "trainjob": ("trainer.kubeflow.org", "v1alpha1", "trainjobs", "TrainJob"),
    "pytorchjob": ("kubeflow.org", "v1", "pytorchjobs", "PyTorchJob"),
}


@dataclass(frozen=True)
class EnvRef:
    """An environment variable taken from a Secret or ConfigMap key of the same name."""

    name: str
    source: Literal["secret", "configmap"]
    object_name: str
    optional: bool = False

    def manifest(self) -> dict[str, Any]:
        """The ``env`` entry (``valueFrom``), never the value itself."""
        ref = "secretKeyRef" if self.source == "secret" else "configMapKeyRef"
        key = {"name": self.object_name, "key": self.name, "optional": self.optional}
        return {"name": self.name, "valueFrom": {ref: key}}


@dataclass(frozen=True)
class JobSettings:
    """What ``compile.py`` fixes about a training job (travels as one JSON string parameter).

    Attributes:
        kind: ``trainjob`` or ``pytorchjob``.
        workers: nodes (pods) of the job.
        gpus_per_worker: GPUs of each pod, one process per GPU (0: one CPU process per pod).
        image: the image every worker runs (the CUDA build when GPUs are requested).
        shared_pvc: a ReadWriteMany PVC mounted into the launcher and every worker.
        mount_path: where it is mounted.
        runtime: the ClusterTrainingRuntime of a ``trainjob``.
        namespace: "" = the launcher pod's own namespace.
        env: Secret / ConfigMap keys every worker gets as environment variables.
        poll_seconds: how often the launcher reads the job's status.
        timeout_seconds: how long it waits before deleting the job and failing (0 = no limit).
    """

    kind: JobKind = "trainjob"
    workers: int = 2
    gpus_per_worker: int = 1
    image: str = ""
    shared_pvc: str = ""
    mount_path: str = "/mnt/dcflow-shared"
    runtime: str = "torch-distributed"
    namespace: str = ""
    env: tuple[EnvRef, ...] = field(default_factory=tuple)
    poll_seconds: float = 15.0
    timeout_seconds: int = 0

    def __post_init__(self) -> None:
        if self.kind not in API:
            raise ConfigError(f"unknown job kind {self.kind!r}: want trainjob or pytorchjob")
        if self.workers < 1 or self.gpus_per_worker < 0:
            raise ConfigError("--workers must be >= 1 and --gpus-per-worker >= 0")
        if not self.shared_pvc:
            raise ConfigError("a multi-worker training job needs --shared-pvc NAME:/MOUNT/PATH")
        if not self.mount_path.startswith("/"):
            raise ConfigError(f"the shared volume's mount path must be absolute: {self.mount_path}")

    @property
    def procs_per_worker(self) -> int:
        """Processes per pod: one per GPU, or one on a CPU pod."""
        return max(self.gpus_per_worker, 1)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the component parameter)."""
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "env"}
        out["env"] = [vars(e) for e in self.env]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobSettings:
        """Inverse of :meth:`to_dict`."""
        env = tuple(EnvRef(**e) for e in data.get("env", []))
        return cls(**{**{k: v for k, v in data.items() if k != "env"}, "env": env})


def _volume(s: JobSettings) -> tuple[dict[str, Any], dict[str, Any]]:
    volume = {"name": "dcflow-shared", "persistentVolumeClaim": {"claimName": s.shared_pvc}}
    return volume, {"name": "dcflow-shared", "mountPath": s.mount_path}


def _resources(s: JobSettings) -> dict[str, Any]:
    if s.gpus_per_worker == 0:
        return {}
    return {"limits": {GPU_RESOURCE: s.gpus_per_worker}}


def trainjob_manifest(name: str, s: JobSettings, args: list[str]) -> dict[str, Any]:
    """A Trainer v2 ``TrainJob`` running ``torchrun ARGS`` on ``s.workers`` nodes."""
    volume, mount = _volume(s)
    trainer: dict[str, Any] = {
        "image": s.image,
        "command": ["torchrun"],
        "args": args,
        "numNodes": s.workers,
        "numProcPerNode": s.procs_per_worker,
        "env": [e.manifest() for e in s.env],
    }
    if res := _resources(s):
        trainer["resourcesPerNode"] = res
    pod = {"volumes": [volume], "containers": [{"name": CONTAINER, "volumeMounts": [mount]}]}
    patch = {
        "manager": PATCH_MANAGER,
        "trainingRuntimeSpec": {
            "template": {
                "spec": {
                    "replicatedJobs": [
                        {"name": CONTAINER, "template": {"spec": {"template": {"spec": pod}}}}
                    ]
                }
            }
        },
    }
    return {
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "TrainJob",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "dcflow"}},
        "spec": {
            "runtimeRef": {"name": s.runtime},
            "trainer": trainer,
            "runtimePatches": [patch],
        },
    }


def pytorchjob_manifest(name: str, s: JobSettings, args: list[str]) -> dict[str, Any]:
    """A training-operator v1 ``PyTorchJob``: a Master and ``workers - 1`` Workers."""
    volume, mount = _volume(s)
    container: dict[str, Any] = {
        "name": "pytorch",  # the container name the operator looks for
        "image": s.image,
        "command": ["torchrun"],
        "args": args,
        "env": [e.manifest() for e in s.env],
        "volumeMounts": [mount],
    }
    if res := _resources(s):
        container["resources"] = res

    def replica(count: int) -> dict[str, Any]:
        return {
            "replicas": count,
            "restartPolicy": "OnFailure",
            "template": {"spec": {"containers": [container], "volumes": [volume]}},
        }

    replicas = {"Master": replica(1)}
    if s.workers > 1:
        replicas["Worker"] = replica(s.workers - 1)
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "dcflow"}},
        "spec": {
            "nprocPerNode": str(s.procs_per_worker),
            "runPolicy": {"cleanPodPolicy": "None"},
            "pytorchReplicaSpecs": replicas,
        },
    }


def manifest(name: str, s: JobSettings, args: list[str]) -> dict[str, Any]:
    """The job manifest of ``s.kind``."""
    build = trainjob_manifest if s.kind == "trainjob" else pytorchjob_manifest
    return build(name, s, args)


def job_state(kind: JobKind, obj: dict[str, Any]) -> tuple[str, str]:
    """``(state, message)`` of a job object: ``running``, ``succeeded`` or ``failed``.

    TrainJob reports ``Complete`` / ``Failed`` conditions; PyTorchJob ``Succeeded`` / ``Failed``.
    """
    done = "Complete" if kind == "trainjob" else "Succeeded"
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("status") != "True":
            continue
        if cond.get("type") == "Failed":
            return "failed", cond.get("message") or cond.get("reason") or "no message"
        if cond.get("type") == done:
            return "succeeded", cond.get("message") or ""
    return "running", ""
