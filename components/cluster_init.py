"""cluster-init: initial clustering from the verified pretrained weights."""

from typing import NamedTuple

from dcflow_components._base import COMPONENT_KWARGS
from kfp import dsl
from kfp.dsl import Artifact, Output


@dsl.component(**COMPONENT_KWARGS)
def cluster_init(
    config: str, weights_uri: str, weights_sha256: str, reports: str, out: Output[Artifact]
) -> NamedTuple("Outputs", reports=str):
    """Embed the data and compute the initial assignment."""
    import json
    import time

    started = time.time()
    from dcflow.stages.cluster_init import cluster_init as run

    r = run(config, out.path, weights_uri, weights_sha256, started=started)
    return (json.dumps([*json.loads(reports), r]),)
