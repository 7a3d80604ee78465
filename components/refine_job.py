"""refine as a Kubeflow Trainer job: stage its inputs, submit it, wait, save rank 0's output."""

from typing import NamedTuple, Optional

from dcflow_components._base import COMPONENT_KWARGS
from kfp import dsl
from kfp.dsl import Artifact, Input, Output


@dsl.component(**COMPONENT_KWARGS)
def refine_job(
    config: str,
    weights_uri: str,
    weights_sha256: str,
    reports: str,
    job: str,
    init: Input[Artifact],
    out: Output[Artifact],
    selection: Optional[Input[Artifact]] = None,  # noqa: UP045  (KFP parses Optional only)
) -> NamedTuple("Outputs", reports=str):
    """Run the method's data-parallel refine as a TrainJob/PyTorchJob (with RUC's selection)."""
    import json
    import time
    import uuid

    started = time.time()
    from dcflow.stages.refine import refine_job as run

    name = f"dcflow-refine-{uuid.uuid4().hex[:10]}"  # a retry starts a new job
    chosen = selection.path if selection is not None else ""  # none: ProPos, HaDis, ULDC, SCAN
    r = run(config, init.path, out.path, chosen, weights_uri, weights_sha256, job, name, started)
    return (json.dumps([*json.loads(reports), r]),)
