"""Build a method's KFP pipeline from its declared stages.

download-weights -> (pretrain | verify-weights) -> cluster-init -> confident-sample-selection ->
refine -> evaluate. The weights cross the ``dsl.If`` as a (URI, sha256) pair of string parameters
joined by ``dsl.OneOf`` (kfp.local cannot join artifacts); every other hand-off is an artifact.
Stage reports travel as a JSON list parameter that each stage extends, so ``evaluate`` can log every
stage to MLflow whatever branch ran. GPU requests, display names and caching live here.
"""

from typing import Any

from dcflow_components import (
    cluster_init,
    confident_sample_selection,
    download_weights,
    evaluate,
    pretrain,
    refine,
    verify_weights,
)
from kfp import dsl

GPU_RESOURCE = "nvidia.com/gpu"


def _train(task: Any, stage: str, training: frozenset[str], gpus: int) -> Any:
    task.set_display_name(stage)
    if stage in training and gpus > 0:
        task.set_accelerator_type(GPU_RESOURCE).set_accelerator_limit(gpus)
    return task


def build(method: str, gpus: int = 1, default_config: str = "") -> Any:
    """Return the ``@dsl.pipeline`` for ``method``.

    Args:
        method: registered method name.
        gpus: GPUs requested by each training stage (0 removes the request).
        default_config: run config JSON used when the pipeline is started without one.
    """
    from dcflow.registry import get_method

    cls = get_method(method)
    stages, training = cls.stages, cls.training_stages
    expected = (
        "download-weights",
        "pretrain",
        "cluster-init",
        "confident-sample-selection",
        "refine",
        "evaluate",
    )
    if stages != expected:
        raise NotImplementedError(f"no pipeline layout for stages {stages}")

    @dsl.pipeline(name=f"dcflow-{method}", description=f"{cls.name}: {cls.paper}")
    def pipeline(
        config: str = default_config,
        weights_store: str = "",
        tracking_uri: str = "",
        experiment: str = "dcflow",
    ) -> str:
        dw = _train(
            download_weights(config=config, weights_store=weights_store),
            "download-weights",
            training,
            gpus,
        )
        dw.set_caching_options(False)
        with dsl.If(dw.outputs["found"] == False, name="weights-not-cached"):  # noqa: E712
            pre = _train(
                pretrain(config=config, weights_store=weights_store, reports=dw.outputs["reports"]),
                "pretrain",
                training,
                gpus,
            )
        with dsl.Else(name="weights-cached"):
            ver = _train(
                verify_weights(
                    weights_uri=dw.outputs["weights_uri"],
                    weights_sha256=dw.outputs["weights_sha256"],
                    reports=dw.outputs["reports"],
                ),
                "verify-weights",
                training,
                gpus,
            )
        uri = dsl.OneOf(pre.outputs["weights_uri"], ver.outputs["weights_uri"])
        sha = dsl.OneOf(pre.outputs["weights_sha256"], ver.outputs["weights_sha256"])
        reports = dsl.OneOf(pre.outputs["reports"], ver.outputs["reports"])
        init = _train(
            cluster_init(config=config, weights_uri=uri, weights_sha256=sha, reports=reports),
            "cluster-init",
            training,
            gpus,
        )
        sel = _train(
            confident_sample_selection(
                config=config, reports=init.outputs["reports"], init=init.outputs["out"]
            ),
            "confident-sample-selection",
            training,
            gpus,
        )
        ref = _train(
            refine(
                config=config,
                weights_uri=uri,
                weights_sha256=sha,
                reports=sel.outputs["reports"],
                init=init.outputs["out"],
                selection=sel.outputs["out"],
            ),
            "refine",
            training,
            gpus,
        )
        ev = _train(
            evaluate(
                config=config,
                reports=ref.outputs["reports"],
                init=init.outputs["out"],
                final=ref.outputs["out"],
                tracking_uri=tracking_uri,
                experiment=experiment,
                job_id=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
            ),
            "evaluate",
            training,
            gpus,
        )
        ev.set_caching_options(False)
        return ev.outputs["summary"]

    return pipeline
