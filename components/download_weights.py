"""download-weights: look up cached pretrained weights for this run."""

from typing import NamedTuple

from dcflow_components._base import COMPONENT_KWARGS
from kfp import dsl


@dsl.component(**COMPONENT_KWARGS)
def download_weights(config: str, weights_store: str) -> NamedTuple(
    "Outputs", found=bool, weights_uri=str, weights_sha256=str, reports=str
):
    """Look the weights up by (method, data, pretrain config, seed) in the weights store."""
    import json
    import time

    started = time.time()
    from dcflow.stages.download_weights import download_weights as run

    r = run(config, weights_store, started=started)
    return (r["found"], r["weights_uri"], r["weights_sha256"], json.dumps([r["report"]]))
