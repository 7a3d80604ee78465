"""refine: the method's (semi-)supervised refinement from the confident samples."""

from typing import NamedTuple, Optional

from dcflow_components._base import COMPONENT_KWARGS
from kfp import dsl
from kfp.dsl import Artifact, Input, Output


@dsl.component(**COMPONENT_KWARGS)
def refine(
    config: str,
    weights_uri: str,
    weights_sha256: str,
    reports: str,
    init: Input[Artifact],
    out: Output[Artifact],
    selection: Optional[Input[Artifact]] = None,  # noqa: UP045  (KFP parses Optional only)
) -> NamedTuple("Outputs", reports=str):
    """Refine the clustering; writes the final assignment."""
    import json
    import time

    started = time.time()
    from dcflow.stages.refine import refine as run

    chosen = selection.path if selection is not None else ""  # none: ProPos, HaDis
    r = run(config, init.path, out.path, chosen, weights_uri, weights_sha256, started=started)
    return (json.dumps([*json.loads(reports), r]),)
