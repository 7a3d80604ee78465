"""cluster-init: the initial clustering, from the verified pretrained weights."""

from __future__ import annotations

from typing import Any

from dcflow.stages.common import guard
from dcflow.stages.runner import open_stage


@guard
def cluster_init(
    config_json: str,
    out_dir: str,
    weights_uri: str = "",
    weights_sha256: str = "",
    started: float | None = None,
) -> dict[str, Any]:
    """Run the method's cluster-init hook and save its :class:`~dcflow.handoff.ClusterInitOut`.

    Returns:
        The stage's compact report (seconds, metrics; curves stay in the artifact).
    """
    with open_stage(
        "cluster-init", config_json, out_dir, {}, weights_uri, weights_sha256, started
    ) as stage:
        if stage.reused is not None:
            return stage.reused
        return stage.close(stage.method.cluster_init(stage.ctx))
