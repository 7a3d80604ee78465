"""report: join of a comparison pipeline; builds results.md, results.csv and plots from MLflow."""

from typing import NamedTuple

from dcflow_components._base import COMPONENT_KWARGS
from kfp import dsl
from kfp.dsl import Artifact, Output


@dsl.component(**COMPONENT_KWARGS)
def report(
    tracking_uri: str, experiment: str, comparison: str, out: Output[Artifact]
) -> NamedTuple("Outputs", results=str):
    """Rebuild the comparison's report from the runs MLflow holds for ``comparison``."""
    from pathlib import Path

    from dcflow.compare.build import build_report
    from dcflow.stages.common import guard

    guard(build_report)(tracking_uri, experiment, comparison, Path(out.path))
    return ((Path(out.path) / "results.md").read_text(),)
