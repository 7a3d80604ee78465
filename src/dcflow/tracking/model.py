"""The finished run as an MLflow model: a pyfunc that assigns new images with ``predict``.

Logged under the run's ``model/`` artifact path with the self-contained bundle
(:func:`dcflow.stages.heldout.make_bundle`: ``run.json``, the cluster-init and final artifacts,
the pretrained weights), so MLflow's model registry can hold it and ``mlflow models serve`` or
``mlflow.pyfunc.load_model(...).predict(images)`` can use it without dcflow's pipeline. The input
is an array of images ``[N, H, W]`` or ``[N, H, W, C]`` (uint8, or float in ``[0, 1]``); the
output is the cluster of each image.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from dcflow.errors import ServiceError

ARTIFACT_PATH = "model"


def predict_images(bundle: str | Path, images: np.ndarray) -> np.ndarray:
    """Clusters of ``images`` under the run in ``bundle`` (what the pyfunc's predict calls)."""
    from dcflow.stages.predict import find_run, predict_arrays

    root, record = find_run(bundle)
    with tempfile.TemporaryDirectory(prefix="dcflow-pyfunc-") as tmp:
        path = Path(tmp) / "images.npz"
        np.savez(path, x=np.asarray(images))
        out = predict_arrays(root, record, {"name": f"npz:{path}"}, Path(tmp) / "out")
    return np.asarray(out.labels)


def _python_model() -> Any:
    from mlflow.pyfunc import PythonModel

    class DcflowModel(PythonModel):
        """Assigns images with a finished dcflow run (see :mod:`dcflow.tracking.model`)."""

        def load_context(self, context: Any) -> None:
            self.bundle = Path(context.artifacts["bundle"])

        # no type hints: MLflow would read them as its input schema and warn
        def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
            return predict_images(self.bundle, np.asarray(model_input))

    return DcflowModel()


def log_model(tracking_uri: str, run_id: str, bundle: Path) -> None:
    """Save the bundle as a pyfunc model and log it under the run's ``model/`` artifact path.

    Raises:
        ServiceError: MLflow could not take it (one line).
    """
    from mlflow.pyfunc import save_model
    from mlflow.tracking import MlflowClient

    try:
        with tempfile.TemporaryDirectory(prefix="dcflow-model-") as tmp:
            target = Path(tmp) / ARTIFACT_PATH
            save_model(
                str(target),
                python_model=_python_model(),
                artifacts={"bundle": str(bundle)},
                pip_requirements=["dcflow"],
            )
            MlflowClient(tracking_uri).log_artifacts(run_id, str(target), ARTIFACT_PATH)
    except Exception as exc:  # noqa: BLE001 - any MLflow failure is one line
        raise ServiceError(f"MLflow model logging failed: {type(exc).__name__}: {exc}") from None


def download_bundle(tracking_uri: str, run_id: str, dst: Path) -> Path:
    """The bundle of a run's logged model, downloaded into ``dst``.

    Raises:
        ServiceError: no such run or no model logged with it.
    """
    from mlflow.tracking import MlflowClient

    try:
        path = MlflowClient(tracking_uri).download_artifacts(run_id, ARTIFACT_PATH, str(dst))
    except Exception as exc:  # noqa: BLE001
        raise ServiceError(f"MLflow run {run_id} has no dcflow model: {str(exc)[:200]}") from None
    found = sorted(Path(path).rglob("run.json"))
    if not found:
        raise ServiceError(f"MLflow run {run_id}: its model holds no run.json")
    return found[0].parent
