"""What evaluate adds for prediction: ``run.json``, the held-out split, the self-contained bundle.

The held-out protocol (``dataset.split: train`` + ``dataset.eval_split: test``): the run is fitted
on one split only, then the method's ``predict`` assigns the other split with the finished model,
and that split's metrics are reported apart (``heldout``). The bundle is the run reduced to what
``predict`` needs (``run.json``, the cluster-init and final artifacts, the pretrained weights), as
MLflow logs it for its model registry.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from dcflow import artifacts as art
from dcflow.clustering.metrics import cluster_metrics
from dcflow.config import DatasetConfig, RunConfig
from dcflow.data import load_dataset
from dcflow.progress import emit
from dcflow.stages.predict import predict_arrays
from dcflow.storage import WEIGHTS_FILE, fetch_weights


def score_heldout(cfg: RunConfig, root: Path, record: dict[str, Any], out: Path) -> dict[str, Any]:
    """Assign ``cfg.dataset.eval_split`` with the finished run and score it against its labels.

    Returns:
        ``{"split", "n_samples", "metrics"}`` (metrics empty when the split has no labels).
    """
    split = cfg.dataset.eval_split
    dataset = {**cfg.dataset.model_dump(), "split": split, "eval_split": None, "limit": None}
    emit(f"  held-out: assigning the {split} split with the fitted model")
    result = predict_arrays(root, record, dataset, out / "heldout")
    data = load_dataset(DatasetConfig.model_validate(dataset), fit=False)
    metrics = cluster_metrics(data.y, result.labels, result.proba) if data.y is not None else {}
    shown = " ".join(f"{k}={v:.4f}" for k, v in list(metrics.items())[:3])
    emit(f"  held-out {split} (n={data.n}): {shown}")
    return {"split": split, "n_samples": data.n, "metrics": metrics}


def make_bundle(root: Path, record: dict[str, Any], target: Path) -> Path:
    """Copy the run's prediction inputs into ``target`` (a self-contained, relocatable run).

    The weights are fetched (and their sha256 checked) into the bundle, so it needs no store.
    """
    target.mkdir(parents=True, exist_ok=True)
    bundle = {**record, "init": "init", "final": "final" if record["final"] else ""}
    shutil.copytree(root / record["init"], target / "init", dirs_exist_ok=True)
    if record["final"]:
        shutil.copytree(root / record["final"], target / "final", dirs_exist_ok=True)
    if record["weights_uri"]:
        fetch_weights(record["weights_uri"], record["weights_sha256"], target / WEIGHTS_FILE)
        bundle["weights_uri"] = WEIGHTS_FILE
    art.save_json(target, art.RUN, bundle)
    return target


def log_model(uri: str, run_id: str, root: Path, record: dict[str, Any], out: Path) -> None:
    """Log the run as an MLflow model (a warning, not a failure, when MLflow cannot take it)."""
    import tempfile

    from dcflow.errors import DcflowError
    from dcflow.tracking.model import log_model as log

    try:
        with tempfile.TemporaryDirectory(prefix="dcflow-bundle-") as tmp:
            log(uri, run_id, make_bundle(root, record, Path(tmp) / "bundle"))
        emit("  model logged (MLflow artifact model/; dcflow predict RUN_ID)")
    except DcflowError as exc:
        emit(f"  warning: {exc}")
