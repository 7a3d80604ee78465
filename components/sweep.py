"""sweep-k components: the points (a config per K), one cluster-init scored per K, the choice.

The loop runs over ``plan-k``'s output, each point a JSON string carrying its own config and
weights reference: kfp.local 2.17 hands a task inside a ``ParallelFor`` the loop item in place of
any output of a task outside the loop, so nothing from outside may cross into the loop but the
item itself and pipeline parameters.
"""

from typing import List  # noqa: UP035  (KFP parses typing.List only)

from dcflow_components._base import COMPONENT_KWARGS
from kfp import dsl
from kfp.dsl import Artifact, Output


@dsl.component(**COMPONENT_KWARGS)
def plan_k(
    config: str,
    ks: List[int],  # noqa: UP006
    weights_uri: str,
    weights_sha256: str,
) -> List[str]:  # noqa: UP006
    """One JSON point per K: the config at that K and the (shared) weights reference."""
    from dcflow.stages.sweep import plan_points

    return plan_points(config, ks, weights_uri, weights_sha256)


@dsl.component(**COMPONENT_KWARGS)
def point_config(point: str) -> str:
    """The run config of one point (for methods that pretrain once per K)."""
    import json

    return str(json.loads(point)["config"])


@dsl.component(**COMPONENT_KWARGS)
def sweep_point(
    point: str, out: Output[Artifact], weights_uri: str = "", weights_sha256: str = ""
) -> str:
    """cluster-init at the point's K and its internal scores (JSON); weights given override."""
    import json
    import time

    started = time.time()
    from dcflow.stages.sweep import sweep_point as run

    spec = json.loads(point)
    uri, sha = weights_uri or spec["weights_uri"], weights_sha256 or spec["weights_sha256"]
    return json.dumps(run(spec["config"], out.path, uri, sha, started=started))


@dsl.component(**COMPONENT_KWARGS)
def choose_k(
    config: str,
    points: List[str],  # noqa: UP006
    criterion: str,
    tracking_uri: str,
    experiment: str,
    out: Output[Artifact],
) -> str:
    """Pick K by ``criterion``; write and log sweep.json and the score-against-K plot."""
    import json

    from dcflow.stages.sweep import summarise

    return json.dumps(summarise(config, points, criterion, out.path, tracking_uri, experiment))
