"""cluster-init as a Kubeflow Trainer job: stage inputs, submit, wait, save rank 0's output."""

from typing import NamedTuple

from dcflow_components._base import COMPONENT_KWARGS
from kfp import dsl
from kfp.dsl import Artifact, Output


@dsl.component(**COMPONENT_KWARGS)
def cluster_init_job(
    config: str,
    weights_uri: str,
    weights_sha256: str,
    reports: str,
    job: str,
    out: Output[Artifact],
) -> NamedTuple("Outputs", reports=str):
    """Run the method's data-parallel cluster-init (SCAN, RUC) as a TrainJob/PyTorchJob."""
    import json
    import time
    import uuid

    started = time.time()
    from dcflow.stages.cluster_init import cluster_init_job as run

    name = f"dcflow-cluster-init-{uuid.uuid4().hex[:10]}"  # a retry starts a new job
    r = run(config, out.path, weights_uri, weights_sha256, job, name, started)
    return (json.dumps([*json.loads(reports), r]),)
