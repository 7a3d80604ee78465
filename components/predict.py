"""predict: assign new images with a finished run's model (no re-training)."""

from typing import NamedTuple, Optional

from dcflow_components._base import COMPONENT_KWARGS
from kfp import dsl
from kfp.dsl import Artifact, Input, Output


@dsl.component(**COMPONENT_KWARGS)
def predict(
    config: str,
    weights_uri: str,
    weights_sha256: str,
    init: Input[Artifact],
    out: Output[Artifact],
    final: Optional[Input[Artifact]] = None,  # noqa: UP045  (KFP parses Optional only)
) -> NamedTuple("Outputs", n_samples=int, mean_confidence=float):
    """Run the method's predict hook on the config's dataset with the run's artifacts."""
    import time

    started = time.time()
    from dcflow.stages.predict import predict as run

    chosen = final.path if final is not None else ""  # methods without refine: cluster-init
    r = run(config, init.path, chosen, out.path, weights_uri, weights_sha256, started=started)
    return (int(len(r.labels)), float(r.metrics.get("mean_confidence", float("nan"))))
