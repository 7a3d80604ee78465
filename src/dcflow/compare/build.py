"""Build a comparison's report (tables and plots) from MLflow alone."""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path

import numpy as np

from dcflow import tracking
from dcflow.compare import figures, ranking
from dcflow.compare.report import (
    LEDGER,
    Record,
    aggregate,
    load_ledger,
    merge_records,
    records_from_runs,
    save_ledger,
    write_csv,
    write_markdown,
)
from dcflow.errors import DataError, ServiceError
from dcflow.progress import emit

PREDICTIONS = "predictions.csv"
EMBEDDING = "embedding.png"


def _read_predictions(path: Path) -> np.ndarray | None:
    """``[N, 3]`` label, cluster, confidence (NaN when absent); ``None`` without labels."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or rows[0]["label"] == "":
        return None
    conf = [float(r["confidence"]) if r.get("confidence") else np.nan for r in rows]
    return np.column_stack(
        [[int(r["label"]) for r in rows], [int(r["cluster"]) for r in rows], conf]
    )


def _per_dataset_plots(uri: str, records: list[Record], out: Path, tmp: Path) -> list[Path]:
    """Reliability, confusion, embedding and curve figures per dataset (lowest seed per method)."""
    files: list[Path] = []
    for dataset in sorted({r.dataset for r in records}):
        first: dict[str, Record] = {}
        for r in sorted(records, key=lambda r: r.seed):
            if r.dataset == dataset:
                first.setdefault(r.method, r)
        preds, images, curves = {}, {}, {}
        for method, rec in first.items():
            where = tmp / rec.run_id
            csv_path = tracking.download_file(uri, rec.run_id, PREDICTIONS, where)
            p = _read_predictions(csv_path) if csv_path else None
            if p is not None:
                preds[method] = p
            png = tracking.download_file(uri, rec.run_id, EMBEDDING, where)
            if png:
                images[method] = png
            curves[method] = tracking.stage_curves(uri, rec.run_id)
        stem = dataset.replace(":", "_").replace("/", "_")
        calibrated = {m: p for m, p in preds.items() if not np.isnan(p[:, 2]).any()}
        if calibrated:
            title = f"reliability on {dataset}"
            files.append(figures.reliability(calibrated, out / f"reliability_{stem}.png", title))
        if preds:
            title = f"confusion on {dataset}"
            files.append(figures.confusion_grid(preds, out / f"confusion_{stem}.png", title))
        if images:
            files.append(figures.tile_images(images, out / f"embedding_{stem}.png"))
        if any(curves.values()):
            files.append(figures.curves(curves, out / f"curves_{stem}.png"))
    return files


def build_report(
    tracking_uri: str, experiment: str, comparison: str, out: Path, log_to_mlflow: bool = True
) -> list[Path]:
    """Write results.csv, results.md, ranking.csv and the plots into ``out``; log them to MLflow.

    The runs come from MLflow and from ``out/records.json``, the ledger of an earlier report: a
    run recorded there still counts when the MLflow store that held it is gone (a comparison
    resumed on another machine), though without its plots. The merged ledger is written back.

    Runs without labels appear with ``–`` for the label metrics, in the label-free ranking and
    in the embedding plots; ``acc.png`` shows the labelled rows (none: not written).

    Raises:
        DataError: MLflow holds no finished run for this experiment / comparison.
    """
    uri = tracking.resolve_tracking_uri(tracking_uri)
    ledger = load_ledger(out / LEDGER)
    try:
        tracked = records_from_runs(tracking.pipeline_runs(uri, experiment, comparison))
    except ServiceError:
        if not ledger:  # no experiment, and no ledger to report from
            raise
        tracked = []
    in_mlflow = {r.run_id for r in tracked}  # a ledger-only run has no artifacts to plot
    records = merge_records([r for r in ledger if r.run_id not in in_mlflow], tracked)
    if not records:
        which = f"comparison {comparison!r} in " if comparison else ""
        raise DataError(f"no finished runs for {which}experiment {experiment!r} at {uri}")
    emit(f"report from {len(tracked)} runs in MLflow ({uri}) and {len(records) - len(tracked)} "
         f"from {out / LEDGER}" if len(records) > len(tracked) else
         f"report from {len(records)} runs in MLflow ({uri})")  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    files = [save_ledger(records, out / LEDGER)]
    rows = aggregate(records)
    header = f"# dcflow comparison {comparison or '(all runs)'}, experiment {experiment}"
    files.append(write_csv(rows, out / "results.csv"))
    files.append(write_markdown(rows, out / "results.md", header, records))
    files.append(ranking.write_csv(records, out / "ranking.csv"))
    labelled = [row for row in rows if "acc_mean" in row]
    if labelled:
        files.append(figures.acc_bars(labelled, out / "acc.png"))
    with tempfile.TemporaryDirectory(prefix="dcflow-report-") as tmp:
        files += _per_dataset_plots(
            uri, [r for r in records if r.run_id in in_mlflow], out, Path(tmp)
        )
    if log_to_mlflow and comparison:
        params = {"methods": ",".join(sorted({r.method for r in records}))}
        params["datasets"] = ",".join(sorted({r.dataset for r in records}))
        run_id = tracking.log_comparison_run(uri, experiment, comparison, params, files)
        emit(f"comparison run {run_id} logged to MLflow")
    return files
