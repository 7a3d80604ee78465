"""confident-sample-selection: the samples whose initial assignment is trusted."""

from __future__ import annotations

from typing import Any

from dcflow.handoff import ClusterInitOut
from dcflow.stages.common import guard
from dcflow.stages.runner import open_stage


@guard
def confident_sample_selection(
    config_json: str, init_dir: str, out_dir: str, started: float | None = None
) -> dict[str, Any]:
    """Run the method's selection hook on the cluster-init output; save its ``SelectionOut``.

    Returns:
        The stage's compact report.
    """
    inputs = {"cluster-init": init_dir}
    with open_stage(
        "confident-sample-selection", config_json, out_dir, inputs, started=started
    ) as stage:
        if stage.reused is not None:
            return stage.reused
        init = ClusterInitOut.load(init_dir)
        return stage.close(stage.method.select(stage.ctx, init))
