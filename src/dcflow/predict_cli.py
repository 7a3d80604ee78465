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


def _resolve(run: str, tmp: Path, tracking_uri: str) -> tuple[Path, dict[str, Any]]:
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


def cmd_predict(args: argparse.Namespace) -> int:
    """Run ``dcflow predict``; print one summary line (and the metrics with labels)."""
    from dcflow.clustering.metrics import cluster_metrics
    from dcflow.config import DatasetConfig
    from dcflow.data import load_dataset
    from dcflow.stages.evaluate import write_predictions
    from dcflow.stages.predict import predict_arrays, run_clusters

    dataset: dict[str, Any] = {"name": args.dataset, "split": args.split}
    if args.data_dir:
        dataset["data_dir"] = str(Path(args.data_dir).expanduser().resolve())
    if args.dataset.startswith(("folder:", "csv:")):
        from dcflow.data.images import absolute_source

        dataset["name"] = absolute_source(args.dataset)
    if args.dataset.startswith("npz:"):
        dataset["name"] = f"npz:{Path(args.dataset[4:]).expanduser().resolve()}"
    with tempfile.TemporaryDirectory(prefix="dcflow-predict-") as tmp:
        root, record = _resolve(args.run, Path(tmp), args.tracking_uri)
        result = predict_arrays(root, record, dataset, Path(tmp) / "out")
        k = run_clusters(root, record)
    data = load_dataset(DatasetConfig.model_validate({**dataset, "n_clusters": k}))
    labels = np.asarray(result.labels)
    proba = np.asarray(result.proba) if result.proba is not None else None
    write_predictions(Path(args.out), data.index, data.y, labels, proba, data.files)
    metrics = cluster_metrics(data.y, labels, result.proba) if data.y is not None else {}
    sizes = np.bincount(labels).tolist()
    print(f"predicted {labels.size} images into {len(sizes)} clusters {sizes} -> {args.out}")
    if metrics:
        print("  ".join(f"{k.upper()} {v:.4f}" for k, v in metrics.items()))
    if args.json:
        summary = {"run": args.run, "dataset": dataset, "n_samples": int(labels.size),
                   "cluster_sizes": sizes, "metrics": metrics, "predictions": args.out}  # fmt: skip
        with atomic_path(Path(args.json)) as t:
            t.write_text(json.dumps(summary, indent=2) + "\n")
    return 0
