"""``dcflow predict RUN --dataset D``: assign new images with a finished run, no re-training.

RUN is a local run directory (the ``artifacts`` of ``dcflow run``'s summary, or any directory
holding the run's ``run.json``), an ``s3://`` prefix holding one, or an MLflow run ID (its logged
model). The CSV has one row per image, as the run's own predictions.csv:
``index,label,cluster[,confidence][,file]`` (``label`` empty without labels, ``file`` for folder:
and csv: data); with labels, ACC/NMI/ARI against them are printed too.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from dcflow.artifacts import atomic_path

RUN_ID = re.compile(r"^[0-9a-f]{32}$")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the ``predict`` sub-command."""
    p = sub.add_parser(
        "predict",
        help="assign new images with a finished run's model (no re-training)",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else "",
    )
    p.add_argument("run", metavar="RUN", help="run directory, s3://prefix, or MLflow run ID")
    p.add_argument("--dataset", required=True, help="dataset name, npz:PATH or s3://b/k.npz")
    p.add_argument("--data-dir", help="directory holding <dataset>.npz")
    p.add_argument("--split", choices=["all", "train", "test"], default="all")
    p.add_argument("--out", metavar="FILE.csv", default="predictions.csv", help="CSV to write")
    p.add_argument("--json", metavar="FILE", help="write a summary as JSON")
    p.add_argument("--tracking-uri", default="", help="MLflow URI for an MLflow run ID")


def resolve_run(run: str, tmp: Path, tracking_uri: str) -> tuple[Path, dict[str, Any]]:
    """A finished run's directory and ``run.json``: local, from an ``s3://`` prefix or MLflow."""
    from dcflow.stages.predict import find_run

    if run.startswith("s3://"):
        from dcflow.storage import download_prefix

        return find_run(download_prefix(run, tmp / "run"))
    if RUN_ID.match(run) and not Path(run).exists():
        from dcflow import tracking
        from dcflow.tracking.model import download_bundle

        uri = tracking.resolve_tracking_uri(tracking_uri)
        return find_run(download_bundle(uri, run, tmp / "mlflow"))
    return find_run(run)


IMAGE_OPTIONS = ("image_size", "channels", "resize")


def predict_to_csv(
    run: str, dataset: dict[str, Any], out: Path, tracking_uri: str = ""
) -> dict[str, Any]:
    """Assign ``dataset`` (``DatasetConfig`` fields) with ``run``; write the predictions CSV.

    New ``folder:``/``csv:`` images are decoded as the run's were (its ``image_size``,
    ``channels`` and ``resize``) unless ``dataset`` says otherwise: the model takes one shape.
    Used by ``dcflow predict`` and by the KFP predict pipeline.

    Returns:
        ``run``, ``dataset``, ``n_samples``, ``cluster_sizes`` (K entries) and ``metrics``
        (ACC/NMI/ARI/ECE when the data has labels, else empty).
    """
    from dcflow.clustering.metrics import cluster_metrics
    from dcflow.config import DatasetConfig, validate_model
    from dcflow.data import load_dataset
    from dcflow.stages.evaluate import write_predictions
    from dcflow.stages.predict import predict_arrays, run_clusters

    validate_model(DatasetConfig, dataset, "dataset")  # one line before any download
    with tempfile.TemporaryDirectory(prefix="dcflow-predict-") as tmp:
        root, record = resolve_run(run, Path(tmp), tracking_uri)
        fitted = record["config"]["dataset"]
        if str(dataset["name"]).startswith(("folder:", "csv:")):
            inherited = {k: fitted.get(k) for k in IMAGE_OPTIONS if fitted.get(k) is not None}
            dataset = {**inherited, **dataset}
        result = predict_arrays(root, record, dataset, Path(tmp) / "out")
        k = run_clusters(root, record)
    data = load_dataset(DatasetConfig.model_validate({**dataset, "n_clusters": k}), fit=False)
    labels = np.asarray(result.labels)
    proba = np.asarray(result.proba) if result.proba is not None else None
    write_predictions(out, data.index, data.y, labels, proba, data.files)
    metrics = cluster_metrics(data.y, labels, result.proba) if data.y is not None else {}
    sizes = np.bincount(labels, minlength=k).tolist()
    return {"run": run, "dataset": dataset, "n_samples": int(labels.size),
            "cluster_sizes": sizes, "metrics": metrics}  # fmt: skip


def cmd_predict(args: argparse.Namespace) -> int:
    """Run ``dcflow predict``; print one summary line (and the metrics with labels)."""
    dataset: dict[str, Any] = {"name": args.dataset, "split": args.split}
    if args.data_dir:
        dataset["data_dir"] = str(Path(args.data_dir).expanduser().resolve())
    from dcflow.data.images import absolute_source, is_image_source

    if is_image_source(args.dataset):
        dataset["name"] = absolute_source(args.dataset)
    if args.dataset.startswith("npz:"):
        dataset["name"] = f"npz:{Path(args.dataset[4:]).expanduser().resolve()}"
    summary = predict_to_csv(args.run, dataset, Path(args.out), args.tracking_uri)
    sizes, metrics = summary["cluster_sizes"], summary["metrics"]
    print(
        f"predicted {summary['n_samples']} images into {len(sizes)} clusters {sizes} -> {args.out}"
    )
    if metrics:
        print("  ".join(f"{k.upper()} {v:.4f}" for k, v in metrics.items()))
    if args.json:
        with atomic_path(Path(args.json)) as t:
            t.write_text(json.dumps({**summary, "predictions": args.out}, indent=2) + "\n")
    return 0
