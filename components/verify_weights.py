"""verify-weights: on a cache hit, check the stored weights' sha256 (pretrain is skipped)."""

from typing import NamedTuple

from dcflow_components._base import COMPONENT_KWARGS
from kfp import dsl


@dsl.component(**COMPONENT_KWARGS)
def verify_weights(weights_uri: str, weights_sha256: str, reports: str) -> NamedTuple(
    "Outputs", weights_uri=str, weights_sha256=str, reports=str
):
    """Fetch the cached weights, verify their checksum, and record pretrain as skipped."""
    import json
    import time

    started = time.time()
    from dcflow.stages.pretrain import verify_cached

    r = verify_cached(weights_uri, weights_sha256, started=started)
    return (weights_uri, weights_sha256, json.dumps([*json.loads(reports), r]))
