"""predict: assign new images with a finished run's model (no re-training).

Two components: ``predict`` takes a run's stage artifacts inside a pipeline; ``predict_run`` (the
``dcflow-predict`` pipeline's one task, :mod:`dcflow_pipelines.predict_pipeline`) takes a finished
run by reference, as ``dcflow predict`` does, and writes the same predictions CSV.
"""

from typing import NamedTuple, Optional

from dcflow_components._base import COMPONENT_KWARGS
from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Output


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


@dsl.component(**COMPONENT_KWARGS)
def predict_run(
    run: str,
    dataset: str,
    dataset_options: str,
    tracking_uri: str,
    predictions: Output[Dataset],
) -> NamedTuple("Outputs", n_samples=int, summary=str):
    """Assign ``dataset`` with the finished ``run`` (s3:// prefix, MLflow run ID or directory).

    ``dataset_options``: a JSON object of further dataset fields (split, data_dir, image_size, ...);
    K is the run's. ``predictions``: the CSV of ``dcflow predict``; ``summary``: n, cluster sizes.
    """
    import json
    from pathlib import Path

    from dcflow.errors import ConfigError
    from dcflow.predict_cli import predict_to_csv
    from dcflow.stages.common import guard

    @guard
    def predict_run() -> dict:
        try:
            fields = {**dict(json.loads(dataset_options or "{}")), "name": dataset}
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"dataset_options is not a JSON object: {exc}") from None
        return predict_to_csv(run, fields, Path(predictions.path), tracking_uri)

    summary = predict_run()
    return (summary["n_samples"], json.dumps(summary))
