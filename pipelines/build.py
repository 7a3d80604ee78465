"""Build a method's KFP pipeline from its declared stages.

download-weights -> (pretrain | verify-weights) -> cluster-init -> confident-sample-selection ->
refine -> evaluate. The weights cross the ``dsl.If`` as a (URI, sha256) pair of string parameters
joined by ``dsl.OneOf`` (kfp.local cannot join artifacts); every other hand-off is an artifact.
Stage reports travel as a compact JSON list parameter that each stage extends (seconds and final
metrics only, so its size does not grow with the number of epochs), so ``evaluate`` can log every
stage to MLflow whatever branch ran; per-step curves stay in the stages' artifacts (and beside the
weights for pretrain), where ``evaluate`` reads them. Per-stage cluster settings (GPU, CPU and
memory requests, scheduling, Secret/ConfigMap env, retries, caching of download-weights and
pretrain, display names) come from :mod:`dcflow_pipelines.cluster`. Caching download-weights is
safe: a stale "found" answer only leads to verify-weights, which fails on missing or changed
weights, and a stale "not found" leads to the cached pretrain, whose output is the weights it
published.
"""

from dataclasses import replace
from typing import Any

from dcflow_components import (
    cluster_init,
    cluster_init_job,
    confident_sample_selection,
    download_weights,
    evaluate,
    pretrain,
    pretrain_job,
    refine,
    refine_job,
    verify_weights,
)
from dcflow_pipelines.cluster import ClusterSettings, apply, apply_launcher, job_settings
from kfp import dsl


class Stager:
    """Applies the per-stage cluster settings (see :mod:`dcflow_pipelines.cluster`)."""

    def __init__(self, training: frozenset[str], settings: ClusterSettings) -> None:
        self.training, self.settings = training, settings

    def __call__(self, task: Any, stage: str) -> Any:
        """Apply ``stage``'s settings to ``task``; return the task."""
        return apply(task, stage, stage in self.training, self.settings)


def weights_tasks(
    stage: Stager, config: Any, weights_store: Any, job: str = ""
) -> tuple[Any, Any, Any]:
    """download-weights, then pretrain on a miss or verify-weights on a hit (``dsl.If``/``Else``).

    Args:
        stage: the stager.
        config: the run config channel.
        weights_store: the weights store channel.
        job: JSON job settings (:func:`dcflow_pipelines.cluster.job_settings`): pretrain then
            runs as a Kubeflow Trainer job launched by a light task; "" trains in the task.

    Returns:
        ``dsl.OneOf`` channels for the weights URI, its sha256 and the stage reports.
    """
    dw = stage(download_weights(config=config, weights_store=weights_store), "download-weights")
    with dsl.If(dw.outputs["found"] == False, name="weights-not-cached"):  # noqa: E712
        reports = dw.outputs["reports"]
        if job:
            pre = apply_launcher(
                pretrain_job(config=config, weights_store=weights_store, reports=reports, job=job),
                stage.settings,
            )
        else:
            pre = stage(
                pretrain(config=config, weights_store=weights_store, reports=reports), "pretrain"
            )
    with dsl.Else(name="weights-cached"):
        ver = stage(
            verify_weights(
                weights_uri=dw.outputs["weights_uri"],
                weights_sha256=dw.outputs["weights_sha256"],
                reports=dw.outputs["reports"],
            ),
            "verify-weights",
        )
    return tuple(  # type: ignore[return-value]
        dsl.OneOf(pre.outputs[k], ver.outputs[k])
        for k in ("weights_uri", "weights_sha256", "reports")
    )


def check_layout(stages: tuple[str, ...]) -> None:
    """Reject stage tuples the builder cannot lay out.

    A layout is ``STAGES`` with any of pretrain (with download-weights), confident-sample-selection
    and refine left out; cluster-init and evaluate are always there, in the order of ``STAGES``.
    """
    from dcflow.methods.base import STAGES

    ordered = tuple(s for s in STAGES if s in stages)
    ok = (
        ordered == stages
        and {"cluster-init", "evaluate"} <= set(stages)
        and (("download-weights" in stages) == ("pretrain" in stages))
    )
    if not ok:
        raise ValueError(f"no pipeline layout for stages {stages}")


def method_and_stager(
    method: str, gpus: int | None, settings: ClusterSettings | None
) -> tuple[Any, ClusterSettings, Stager]:
    """The method's class (its layout checked), the effective settings and their stager."""
    from dcflow.methods.registry import get_method

    cls = get_method(method)
    check_layout(cls.stages)
    settings = settings or ClusterSettings()
    if gpus is not None:
        settings = replace(settings, gpus=gpus)
    return cls, settings, Stager(cls.training_stages, settings)


def uses_job(cls: Any, settings: ClusterSettings, stage: str = "pretrain") -> str:
    """The JSON job settings when ``cls``'s ``stage`` runs as a multi-worker job, else "".

    Only data-parallel stages (``Method.data_parallel``) become jobs; the other stages and
    methods stay plain tasks whatever ``--workers`` says.
    """
    if settings.workers <= 1 or stage not in cls.data_parallel:
        return ""
    return job_settings(settings)


def cluster_init_task(stage: Stager, job: str, **inputs: Any) -> Any:
    """The cluster-init task: in the task's own process, or as a Trainer job (SCAN, RUC)."""
    if job:
        return apply_launcher(cluster_init_job(job=job, **inputs), stage.settings, "cluster-init")
    return stage(cluster_init(**inputs), "cluster-init")


def refine_task(stage: Stager, job: str, selection: dict[str, Any], **inputs: Any) -> Any:
    """The refine task: in the task's own process, or as a Trainer job launched by a light task."""
    if job:
        task = refine_job(job=job, **inputs, **selection)
        return apply_launcher(task, stage.settings, "refine")
    return stage(refine(**inputs, **selection), "refine")


def build(
    method: str,
    gpus: int | None = None,
    default_config: str = "",
    settings: ClusterSettings | None = None,
) -> Any:
    """Return the ``@dsl.pipeline`` for ``method``, laid out from its declared stages.

    Args:
        method: registered method name.
        gpus: GPUs requested by each training stage (0 removes the request); overrides
            ``settings.gpus`` when given.
        default_config: run config JSON used when the pipeline is started without one.
        settings: per-stage cluster settings (default :class:`ClusterSettings`).
    """
    cls, settings, stage = method_and_stager(method, gpus, settings)
    stages = set(cls.stages)
    job, refine_job_settings = uses_job(cls, settings), uses_job(cls, settings, "refine")
    init_job = uses_job(cls, settings, "cluster-init")

    @dsl.pipeline(
        name=f"dcflow-{method}",
        description=f"{cls.name}: {cls.paper}",
        pipeline_root=settings.pipeline_root or None,
    )
    def pipeline(
        config: str = default_config,
        weights_store: str = "",
        tracking_uri: str = "",
        experiment: str = "dcflow",
    ) -> str:
        uri: Any = ""
        sha: Any = ""
        reports: Any = "[]"
        if "pretrain" in stages:
            uri, sha, reports = weights_tasks(stage, config, weights_store, job)
        init = cluster_init_task(
            stage, init_job, config=config, weights_uri=uri, weights_sha256=sha, reports=reports
        )
        final, reports = init, init.outputs["reports"]
        selection: dict[str, Any] = {}
        if "confident-sample-selection" in stages:
            sel = stage(
                confident_sample_selection(
                    config=config, reports=reports, init=init.outputs["out"]
                ),
                "confident-sample-selection",
            )
            selection, reports = {"selection": sel.outputs["out"]}, sel.outputs["reports"]
        if "refine" in stages:
            final = refine_task(
                stage,
                refine_job_settings,
                selection,
                config=config,
                weights_uri=uri,
                weights_sha256=sha,
                reports=reports,
                init=init.outputs["out"],
            )
            reports = final.outputs["reports"]
        ev = stage(
            evaluate(
                config=config,
                reports=reports,
                init=init.outputs["out"],
                final=final.outputs["out"],
                tracking_uri=tracking_uri,
                experiment=experiment,
                job_id=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
                weights_uri=uri,
                weights_sha256=sha,
                **selection,
            ),
            "evaluate",
        )
        return ev.outputs["summary"]

    return pipeline
