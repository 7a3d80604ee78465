"""pretrain as a Kubeflow Trainer job: submit it, wait for it, publish rank 0's weights."""

from typing import NamedTuple

from dcflow_components._base import COMPONENT_KWARGS
from kfp import dsl
from kfp.dsl import Artifact, Output


@dsl.component(**COMPONENT_KWARGS)
def pretrain_job(
    config: str, weights_store: str, reports: str, job: str, out: Output[Artifact]
) -> NamedTuple("Outputs", weights_uri=str, weights_sha256=str, reports=str):
    """Launch the method's data-parallel pretraining as a TrainJob/PyTorchJob and wait for it."""
    import json
    import time
    import uuid

    started = time.time()
    from dcflow.stages.pretrain import pretrain_job as run

    name = f"dcflow-pretrain-{uuid.uuid4().hex[:10]}"  # a retry starts a new job
    r = run(config, weights_store, out.path, job, name, started=started)
    return (r["weights_uri"], r["weights_sha256"], json.dumps([*json.loads(reports), r["report"]]))
