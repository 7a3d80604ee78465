"""evaluate: metrics, predictions, plots and the MLflow runs."""

from typing import NamedTuple

from dcflow_components._base import COMPONENT_KWARGS
from kfp import dsl
from kfp.dsl import Artifact, Input, Output


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
) -> NamedTuple("Outputs", summary=str):
    """Score the final assignment against the labels and log the run to MLflow."""
    import json
    import time

    started = time.time()
    from dcflow.stages.evaluate import evaluate as run

    r = run(
        config,
        init.path,
        final.path,
        json.loads(reports),
        out.path,
        tracking_uri=tracking_uri,
        experiment=experiment,
        job_id=job_id,
        started=started,
    )
    return (json.dumps(r),)
