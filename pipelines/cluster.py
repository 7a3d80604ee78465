"""Per-stage Kubernetes settings of a compiled pipeline (requests, scheduling, env, retries, cache).

Everything here only takes effect on a Kubeflow Pipelines backend; kfp.local ignores it. The S3
credentials and service endpoints come from the Secret and ConfigMap that the Helm chart
(``charts/dcflow``) creates in the pipelines namespace, injected through kfp-kubernetes, so a
compiled YAML holds names of Kubernetes objects, never a credential.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

GPU_RESOURCE = "nvidia.com/gpu"
# ConfigMap keys are the environment variable names they become (chart: templates/configmap.yaml).
CONFIG_MAP_KEYS = (
    "MLFLOW_TRACKING_URI",
    "AWS_ENDPOINT_URL",
    "AWS_DEFAULT_REGION",
    "DCFLOW_WEIGHTS_STORE",
)
SECRET_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
CACHED_STAGES = frozenset({"download-weights", "pretrain"})
EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


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
class ClusterSettings:
    """What a compiled pipeline asks of the cluster, per stage.

    Attributes:
        gpus: GPUs per training stage (0 removes the request).
        cpu, memory: requests of the light stages (download-weights, selection, evaluate).
        train_cpu, train_memory: requests of the method's training stages (e.g. pretrain, refine).
        node_selector: labels every stage's pod must match.
        tolerations: taints every stage's pod tolerates (e.g. GPU nodes).
        secret: Secret with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY ("" injects nothing).
        config_map: ConfigMap whose keys ``CONFIG_MAP_KEYS`` become env vars ("" injects nothing).
        retries: retries of a failed stage (transient node or network failures).
        backoff: first wait before a retry; each next wait is ``backoff_factor`` times longer,
            at most ``backoff_max``.
        pipeline_root: where KFP stores artifacts (``s3://bucket/prefix``; "" = the backend's).
    """

    gpus: int = 1
    cpu: str = "1"
    memory: str = "2Gi"
    train_cpu: str = "2"
    train_memory: str = "4Gi"
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: tuple[Toleration, ...] = ()
    secret: str = "dcflow-s3"
    config_map: str = "dcflow-config"
    retries: int = 2
    backoff: str = "30s"
    backoff_factor: float = 2.0
    backoff_max: str = "600s"
    pipeline_root: str = ""

    @classmethod
    def local(cls) -> ClusterSettings:
        """Settings for kfp.local: no GPU request, no Secret or ConfigMap to inject."""
        return cls(gpus=0, secret="", config_map="", retries=0)


def apply(task: Any, stage: str, training: bool, s: ClusterSettings) -> Any:
    """Give one pipeline task its display name, requests, scheduling, env, retries and caching."""
    from kfp import kubernetes

    task.set_display_name(stage)
    cpu, memory = (s.train_cpu, s.train_memory) if training else (s.cpu, s.memory)
    task.set_cpu_request(cpu).set_memory_request(memory)
    if training and s.gpus > 0:
        task.set_accelerator_type(GPU_RESOURCE).set_accelerator_limit(s.gpus)
    for key, value in sorted(s.node_selector.items()):
        kubernetes.add_node_selector(task, label_key=key, label_value=value)
    for tol in s.tolerations:
        kubernetes.add_toleration(
            task,
            key=tol.key,
            operator="Equal" if tol.value else "Exists",
            value=tol.value or None,
            effect=tol.effect,  # type: ignore[arg-type]
        )
    if s.secret:
        kubernetes.use_secret_as_env(task, s.secret, {k: k for k in SECRET_KEYS})
    if s.config_map:
        # optional: a ConfigMap without e.g. DCFLOW_WEIGHTS_STORE leaves the default in place
        kubernetes.use_config_map_as_env(
            task, s.config_map, {k: k for k in CONFIG_MAP_KEYS}, optional=True
        )
    if s.retries > 0:
        task.set_retry(
            num_retries=s.retries,
            backoff_duration=s.backoff,
            backoff_factor=s.backoff_factor,
            backoff_max_duration=s.backoff_max,
        )
    task.set_caching_options(stage in CACHED_STAGES)
    return task
