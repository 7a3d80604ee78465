"""evaluate: metrics, predictions, plots and the MLflow runs; KFP-native metrics and confusion."""

from typing import NamedTuple, Optional

from dcflow_components._base import COMPONENT_KWARGS
from kfp import dsl
from kfp.dsl import Artifact, Input, Markdown, Metrics, Output


@dsl.component(**COMPONENT_KWARGS)
def evaluate(
    config: str,
    reports: str,
    init: Input[Artifact],
    final: Input[Artifact],
    tracking_uri: str,
    experiment: str,
    job_id: str,
    out: Output[Artifact],
    metrics: Output[Metrics],
    confusion: Output[Markdown],
    weights_uri: str = "",
    weights_sha256: str = "",
    selection: Optional[Input[Artifact]] = None,  # noqa: UP045  (KFP parses Optional only)
) -> NamedTuple("Outputs", summary=str):
    """Score the final assignment, log the run to MLflow, show metrics in the KFP UI too."""
    import json
    import time

    started = time.time()
    from dcflow.stages.evaluate import evaluate as run
    from dcflow.stages.evaluate import kfp_outputs

    r = run(
        config, init.path, final.path, json.loads(reports), out.path, tracking_uri=tracking_uri,
        experiment=experiment, job_id=job_id, started=started, weights_uri=weights_uri,
        weights_sha256=weights_sha256,
        selection_dir=selection.path if selection is not None else "",
    )  # fmt: skip
    kfp_outputs(r, out.path, metrics.log_metric, confusion.path)
    return (json.dumps(r),)
