"""pretrain: train the backbone and publish its weights to the weights store."""

from typing import NamedTuple

from dcflow_components._base import COMPONENT_KWARGS
from kfp import dsl
from kfp.dsl import Artifact, Output


@dsl.component(**COMPONENT_KWARGS)
def pretrain(config: str, weights_store: str, reports: str, out: Output[Artifact]) -> NamedTuple(
    "Outputs", weights_uri=str, weights_sha256=str, reports=str
):
    """Run the method's pretraining; the weights go to the store as (URI, sha256)."""
    import json
    import time

    started = time.time()
    from dcflow.stages.pretrain import pretrain as run

    r = run(config, weights_store, out.path, started=started)
    return (r["weights_uri"], r["weights_sha256"], json.dumps([*json.loads(reports), r["report"]]))
