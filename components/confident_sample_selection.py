"""confident-sample-selection: pick the samples whose assignment is trusted."""

from typing import NamedTuple

from dcflow_components._base import COMPONENT_KWARGS
from kfp import dsl
from kfp.dsl import Artifact, Input, Output


@dsl.component(**COMPONENT_KWARGS)
def confident_sample_selection(
    config: str, reports: str, init: Input[Artifact], out: Output[Artifact]
) -> NamedTuple("Outputs", reports=str):
    """Select confident samples from the cluster-init artifact."""
    import json
    import time

    started = time.time()
    from dcflow.stages.confident_sample_selection import confident_sample_selection as run

    r = run(config, init.path, out.path, started=started)
    return (json.dumps([*json.loads(reports), r]),)
