"""Per-stage Kubernetes settings of a compiled pipeline (resources, scheduling, env, volumes).

Everything here only takes effect on a Kubeflow Pipelines backend; kfp.local ignores it. The S3
credentials and service endpoints come from the Secret and ConfigMap that the Helm chart
(``charts/dcflow``) creates in the pipelines namespace, injected through kfp-kubernetes, so a
compiled YAML holds names of Kubernetes objects, never a credential.

A task "requests GPUs" when it is one of the method's training stages and ``gpus > 0``. Only such
tasks get the accelerator request, ``DCFLOW_REQUIRE_CUDA=1`` (the stage then fails in one line when
torch finds no CUDA device, instead of training on the CPU for hours), the GPU node selector and the
GPU tolerations; ``compile.py`` gives their executors the CUDA image.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

GPU_RESOURCE = "nvidia.com/gpu"
REQUIRE_CUDA_ENV = "DCFLOW_REQUIRE_CUDA"
# ConfigMap keys are the environment variable names they become (chart: templates/configmap.yaml).
CONFIG_MAP_KEYS = (
    "MLFLOW_TRACKING_URI",
    "AWS_ENDPOINT_URL",
    "AWS_DEFAULT_REGION",
    "DCFLOW_WEIGHTS_STORE",
)
SECRET_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
# Optional keys of the --mlflow-secret Secret: the MLflow client's own auth variables.
MLFLOW_SECRET_KEYS = (
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_TRACKING_INSECURE_TLS",
)
CACHED_STAGES = frozenset({"download-weights", "pretrain"})
EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
# The quantity forms kfp's set_cpu_*/set_memory_* accept (and reject otherwise).
_CPU = re.compile(r"([0-9]*[.])?[0-9]+m?")
_MEMORY = re.compile(r"([0-9]+)(E|Ei|P|Pi|T|Ti|G|Gi|M|Mi|K|Ki)?")
_UNITS = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}
_UNITS.update({f"{k}i": 1024 ** "KMGTPE".index(k) * 1024 for k in "KMGTPE"})
_DNS_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


@dataclass(frozen=True)
class Toleration:
    """One pod toleration; ``value`` empty means operator ``Exists``."""

    key: str
    effect: str = "NoSchedule"
    value: str = ""

    @classmethod
    def parse(cls, text: str) -> Toleration:
        """``KEY[=VALUE][:EFFECT]`` -> Toleration (effect defaults to NoSchedule)."""
        body, _, effect = text.partition(":")
        key, _, value = body.partition("=")
        effect = effect or "NoSchedule"
        if not key or effect not in EFFECTS:
            raise ValueError(f"bad toleration {text!r}: want KEY[=VALUE][:{'|'.join(EFFECTS)}]")
        return cls(key, effect, value)


@dataclass(frozen=True)
class PvcMount:
    """An existing PersistentVolumeClaim mounted into every task's pod."""

    name: str
    mount_path: str

    @classmethod
    def parse(cls, text: str) -> PvcMount:
        """``NAME:MOUNT_PATH`` -> PvcMount (NAME a Kubernetes object name, the path absolute)."""
        name, _, path = text.partition(":")
        if not _DNS_NAME.fullmatch(name) or len(name) > 253 or not path.startswith("/"):
            raise ValueError(f"bad PVC mount {text!r}: want NAME:/MOUNT/PATH")
        return cls(name, path)


def _quantity(text: str, flag: str, cpu: bool) -> float:
    """A CPU (cores) or memory (bytes) quantity as a number; ValueError names ``flag``."""
    match = (_CPU if cpu else _MEMORY).fullmatch(text)
    if match is None:
        want = "cores, e.g. 2 or 500m" if cpu else "bytes with an optional unit, e.g. 4Gi or 512M"
        raise ValueError(f"bad {flag} {text!r}: want {want}")
    if cpu:
        return float(text[:-1]) / 1000 if text.endswith("m") else float(text)
    return float(int(match.group(1)) * _UNITS[match.group(2) or ""])


@dataclass(frozen=True)
class ClusterSettings:
    """What a compiled pipeline asks of the cluster, per stage.

    Light stages are every stage but the method's training stages (e.g. pretrain, refine). Every
    quantity is validated here, so a bad value is a usage error before anything compiles.

    Attributes:
        gpus: GPUs per training stage (0 removes the request).
        cpu, memory: requests of the light stages (download-weights, selection, evaluate).
        train_cpu, train_memory: requests of the training stages.
        cpu_limit, memory_limit: limits of the light stages ("" = none; not below the request).
        train_cpu_limit, train_memory_limit: limits of the training stages ("" = none).
        timeout, train_timeout: seconds one attempt of a light / training stage may run (the
            pod's activeDeadlineSeconds; each retry is a new pod; 0 = none).
        node_selector: labels every stage's pod must match.
        tolerations: taints every stage's pod tolerates.
        gpu_node_selector: labels a GPU-requesting stage's pod must match too (e.g. a GPU pool).
        gpu_tolerations: taints a GPU-requesting stage's pod tolerates too (e.g. nvidia.com/gpu).
        image_pull_secrets: Secrets with registry credentials for pulling the image.
        pvcs: existing PVCs mounted into every stage (e.g. datasets under ``data_dir``).
        secret: Secret with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY ("" injects nothing).
        config_map: ConfigMap whose keys ``CONFIG_MAP_KEYS`` become env vars ("" injects nothing).
        mlflow_secret: Secret whose keys ``MLFLOW_SECRET_KEYS`` (each optional) become env vars.
        retries: retries of a failed stage (transient node or network failures).
        backoff: first wait before a retry; each next wait is ``backoff_factor`` times longer,
            at most ``backoff_max``.
        caching: False turns KFP's cache off for every stage (download-weights and pretrain
            are cached otherwise).
        pipeline_root: where KFP stores artifacts (``s3://bucket/prefix``; "" = the backend's).
        workers: pods of a training job; above 1 a method's data-parallel pretrain becomes a
            light launcher task that runs a Kubeflow Trainer job (:mod:`dcflow.trainjob`).
        gpus_per_worker: GPUs (= processes) of each job pod (0: one CPU process per pod).
        job_kind: ``trainjob`` (Trainer v2) or ``pytorchjob`` (training-operator v1).
        shared_pvc: ReadWriteMany PVC mounted into the launcher and every job pod.
        trainer_runtime: the ClusterTrainingRuntime of a TrainJob.
        job_image: the job pods' image (compile.py: the CUDA build when GPUs are requested).
    """

    gpus: int = 1
    cpu: str = "1"
    memory: str = "2Gi"
    train_cpu: str = "2"
    train_memory: str = "4Gi"
    cpu_limit: str = ""
    memory_limit: str = ""
    train_cpu_limit: str = ""
    train_memory_limit: str = ""
    timeout: int = 0
    train_timeout: int = 0
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: tuple[Toleration, ...] = ()
    gpu_node_selector: dict[str, str] = field(default_factory=dict)
    gpu_tolerations: tuple[Toleration, ...] = ()
    image_pull_secrets: tuple[str, ...] = ()
    pvcs: tuple[PvcMount, ...] = ()
    secret: str = "dcflow-s3"
    config_map: str = "dcflow-config"
    mlflow_secret: str = ""
    retries: int = 2
    backoff: str = "30s"
    backoff_factor: float = 2.0
    backoff_max: str = "600s"
    caching: bool = True
    pipeline_root: str = ""
    workers: int = 1
    gpus_per_worker: int = 1
    job_kind: str = "trainjob"
    shared_pvc: PvcMount | None = None
    trainer_runtime: str = "torch-distributed"
    job_image: str = ""

    def __post_init__(self) -> None:
        for name in ("gpus", "retries", "timeout", "train_timeout"):
            if getattr(self, name) < 0:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 0")
        for prefix in ("", "train_"):
            for kind in ("cpu", "memory"):
                request, limit = f"{prefix}{kind}", f"{prefix}{kind}_limit"
                flags = [f"--{n.replace('_', '-')}" for n in (request, limit)]
                low = _quantity(getattr(self, request), flags[0], kind == "cpu")
                if getattr(self, limit):
                    high = _quantity(getattr(self, limit), flags[1], kind == "cpu")
                    if high < low:
                        raise ValueError(f"{flags[1]} {getattr(self, limit)} is below {flags[0]}")
        if self.workers < 1 or self.gpus_per_worker < 0:
            raise ValueError("--workers must be >= 1 and --gpus-per-worker >= 0")
        if self.job_kind not in ("trainjob", "pytorchjob"):
            raise ValueError(f"--job-kind {self.job_kind!r}: want trainjob or pytorchjob")
        if self.workers > 1 and self.shared_pvc is None:
            raise ValueError("--workers needs --shared-pvc NAME:/MOUNT/PATH (a ReadWriteMany PVC)")
        paths = [p.mount_path for p in self.pvcs]
        if len(set(paths)) != len(paths):
            raise ValueError("--pvc: two PVCs at the same mount path")

    @classmethod
    def local(cls) -> ClusterSettings:
        """Settings for kfp.local: no GPU request, no Secret or ConfigMap to inject."""
        return cls(gpus=0, secret="", config_map="", retries=0)


def apply(task: Any, stage: str, training: bool, s: ClusterSettings) -> Any:
    """Give one pipeline task its display name, resources, scheduling, env, volumes and caching."""
    from kfp import kubernetes

    gpu = training and s.gpus > 0
    task.set_display_name(stage)
    _resources(task, training, s)
    if gpu:
        task.set_accelerator_type(GPU_RESOURCE).set_accelerator_limit(s.gpus)
        task.set_env_variable(REQUIRE_CUDA_ENV, "1")
    _scheduling(task, gpu, s)
    _env_and_volumes(task, s)
    timeout = s.train_timeout if training else s.timeout
    if timeout:
        kubernetes.set_timeout(task, timeout)
    if s.retries > 0:
        task.set_retry(
            num_retries=s.retries,
            backoff_duration=s.backoff,
            backoff_factor=s.backoff_factor,
            backoff_max_duration=s.backoff_max,
        )
    task.set_caching_options(s.caching and stage in CACHED_STAGES)
    return task


def _resources(task: Any, training: bool, s: ClusterSettings) -> None:
    """CPU and memory requests, and limits where given."""
    if training:
        cpu, memory = s.train_cpu, s.train_memory
        cpu_limit, memory_limit = s.train_cpu_limit, s.train_memory_limit
    else:
        cpu, memory, cpu_limit, memory_limit = s.cpu, s.memory, s.cpu_limit, s.memory_limit
    task.set_cpu_request(cpu).set_memory_request(memory)
    if cpu_limit:
        task.set_cpu_limit(cpu_limit)
    if memory_limit:
        task.set_memory_limit(memory_limit)


def _scheduling(task: Any, gpu: bool, s: ClusterSettings) -> None:
    """Node selectors and tolerations: every task's, then a GPU task's own on top."""
    from kfp import kubernetes

    selector = {**s.node_selector, **(s.gpu_node_selector if gpu else {})}
    for key, value in sorted(selector.items()):
        kubernetes.add_node_selector(task, label_key=key, label_value=value)
    for tol in (*s.tolerations, *(s.gpu_tolerations if gpu else ())):
        kubernetes.add_toleration(
            task,
            key=tol.key,
            operator="Equal" if tol.value else "Exists",
            value=tol.value or None,
            effect=tol.effect,
        )


def _env_and_volumes(task: Any, s: ClusterSettings) -> None:
    """Secret / ConfigMap env, image pull secrets and PVC mounts (the same on every task)."""
    from kfp import kubernetes

    if s.secret:
        kubernetes.use_secret_as_env(task, s.secret, {k: k for k in SECRET_KEYS})
    if s.config_map:
        # optional: a ConfigMap without e.g. DCFLOW_WEIGHTS_STORE leaves the default in place
        kubernetes.use_config_map_as_env(
            task, s.config_map, {k: k for k in CONFIG_MAP_KEYS}, optional=True
        )
    if s.mlflow_secret:
        # optional (secretKeyRef.optional per key): a Secret holding only a token, or only a
        # user name and password, sets just those variables
        kubernetes.use_secret_as_env(
            task, s.mlflow_secret, {k: k for k in MLFLOW_SECRET_KEYS}, optional=True
        )
    if s.image_pull_secrets:
        kubernetes.set_image_pull_secrets(task, list(s.image_pull_secrets))
    for pvc in s.pvcs:
        kubernetes.mount_pvc(task, pvc_name=pvc.name, mount_path=pvc.mount_path)


def job_settings(s: ClusterSettings) -> str:
    """The JSON :class:`dcflow.jobspec.JobSettings` of a multi-worker training job.

    The job pods get the same Secret and ConfigMap keys as the stage pods, by reference.
    """
    import json

    from dcflow.jobspec import EnvRef, JobSettings

    assert s.shared_pvc is not None
    env = [EnvRef(k, "secret", s.secret) for k in SECRET_KEYS if s.secret]
    env += [EnvRef(k, "configmap", s.config_map, True) for k in CONFIG_MAP_KEYS if s.config_map]
    env += [
        EnvRef(k, "secret", s.mlflow_secret, True) for k in MLFLOW_SECRET_KEYS if s.mlflow_secret
    ]
    job = JobSettings(
        kind=s.job_kind,
        workers=s.workers,
        gpus_per_worker=s.gpus_per_worker,
        image=s.job_image,
        shared_pvc=s.shared_pvc.name,
        mount_path=s.shared_pvc.mount_path,
        runtime=s.trainer_runtime,
        env=tuple(env),
        timeout_seconds=s.train_timeout,
    )
    return json.dumps(job.to_dict(), sort_keys=True)


def apply_launcher(task: Any, s: ClusterSettings, stage: str = "pretrain") -> Any:
    """A job-launching task: light resources, the shared PVC mounted, no accelerator."""
    from kfp import kubernetes

    apply(task, stage, False, replace(s, timeout=0))  # the job has its own timeout
    assert s.shared_pvc is not None
    kubernetes.mount_pvc(task, pvc_name=s.shared_pvc.name, mount_path=s.shared_pvc.mount_path)
    return task
