"""The ``dcflow-predict`` pipeline: assign new images with a finished run, no re-training.

One task, ``predict`` (the :func:`~dcflow_components.predict.predict_run` component): it takes the
finished run by reference (the ``s3://`` prefix of its artifacts, or its MLflow run ID; a local
directory only where every task sees it, e.g. on a ``--pvc`` mount or with kfp.local), the dataset
and its options, and outputs the predictions CSV as an artifact plus a summary (n, cluster sizes).
The task gets the same cluster settings as the fit pipelines' stages
(:func:`dcflow_pipelines.cluster.apply`): a light stage by default, a training stage (GPU request,
training CPU/memory, the CUDA image) with ``training=True``. It is never cached: the run, the data
behind a name and the MLflow model can all change under the same parameters.
"""

from typing import Any, NamedTuple

from dcflow_components.predict import predict_run
from dcflow_pipelines.cluster import ClusterSettings, apply
from kfp import dsl
from kfp.dsl import Dataset

NAME = "dcflow-predict"
STAGE = "predict"


class Outputs(NamedTuple):
    """The pipeline's outputs: the predictions CSV and the summary JSON (n, cluster sizes)."""

    predictions: Dataset
    summary: str


def build_predict(settings: ClusterSettings | None = None, training: bool = False) -> Any:
    """Return the ``@dsl.pipeline`` of ``dcflow-predict``.

    Args:
        settings: cluster settings of the task (default :class:`ClusterSettings`).
        training: run predict as a training stage: GPUs (``settings.gpus``) and the training
            CPU/memory; otherwise it is a light stage with no GPU request.
    """
    settings = settings or ClusterSettings()

    @dsl.pipeline(
        name=NAME,
        description="dcflow: assign new images with a finished run's model (no re-training)",
        pipeline_root=settings.pipeline_root or None,
    )
    def pipeline(
        run: str,
        dataset: str,
        dataset_options: str = "{}",
        tracking_uri: str = "",
    ) -> Outputs:
        task = predict_run(
            run=run, dataset=dataset, dataset_options=dataset_options, tracking_uri=tracking_uri
        )
        apply(task, STAGE, training, settings)
        return Outputs(task.outputs["predictions"], task.outputs["summary"])

    return pipeline
