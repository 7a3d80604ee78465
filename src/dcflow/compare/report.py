"""Aggregate a comparison's runs into results.csv and results.md (mean and spread per cell).

Records come from MLflow (:func:`dcflow.tracking.pipeline_runs`), so the report can be rebuilt from
the tracking server alone. The paper's figure is printed beside ours where the paper reports one.
"""

from __future__ import annotations

import csv
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dcflow.artifacts import atomic_path

METRICS = ("acc", "nmi", "ari", "ece", "wall_seconds")
PAPERS = Path(__file__).with_name("papers.yaml")


@dataclass(frozen=True)
class Record:
    """One finished pipeline run of the comparison."""

    method: str
    dataset: str
    seed: int
    metrics: dict[str, float]
    run_id: str
    start_time: int = 0


def records_from_runs(runs: list[dict[str, Any]]) -> list[Record]:
    """MLflow parent runs -> records, keeping the latest run of each (method, dataset, seed)."""
    latest: dict[tuple[str, str, int], Record] = {}
    for r in sorted(runs, key=lambda r: r["start_time"] or 0):
        t = r["tags"]
        if "method" not in t or "dataset" not in t or "acc" not in r["metrics"]:
            continue
        rec = Record(t["method"], t["dataset"], int(t.get("seed", 0)), r["metrics"], r["run_id"])
        latest[(rec.method, rec.dataset, rec.seed)] = rec
    return sorted(latest.values(), key=lambda r: (r.dataset, r.method, r.seed))


def _stat(values: list[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    return mean, statistics.stdev(values) if len(values) > 1 else 0.0


def aggregate(records: list[Record]) -> list[dict[str, Any]]:
    """One row per (dataset, method): n seeds and mean/std of every metric present."""
    groups: dict[tuple[str, str], list[Record]] = {}
    for r in records:
        groups.setdefault((r.dataset, r.method), []).append(r)
    rows = []
    for (dataset, method), recs in sorted(groups.items()):
        row: dict[str, Any] = {"dataset": dataset, "method": method, "n": len(recs)}
        row["seeds"] = " ".join(str(r.seed) for r in recs)
        for m in METRICS:
            vals = [r.metrics[m] for r in recs if m in r.metrics]
            if len(vals) == len(recs):
                row[f"{m}_mean"], row[f"{m}_std"] = _stat(vals)
        rows.append(row)
    return rows


def paper_figures() -> dict[str, dict[str, dict[str, Any]]]:
    """The papers' figures with their sources (``papers.yaml``)."""
    return dict(yaml.safe_load(PAPERS.read_text()))


def write_csv(rows: list[dict[str, Any]], path: Path) -> Path:
    """results.csv: one row per (dataset, method), mean and std columns."""
    cols = ["dataset", "method", "n", "seeds"]
    cols += [f"{m}_{s}" for m in METRICS for s in ("mean", "std")]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: f"{v:.4f}" if isinstance(v, float) else v for k, v in row.items()})
    return path


def _cell(row: dict[str, Any], m: str, digits: int = 3) -> str:
    if f"{m}_mean" not in row:
        return "–"
    mean, std = row[f"{m}_mean"], row[f"{m}_std"]
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if row["n"] > 1 else f"{mean:.{digits}f}"


def _paper(fig: dict[str, Any] | None) -> tuple[str, str]:
    if not fig:
        return "–", ""
    vals = "/".join(f"{fig[k]:.3f}" if k in fig else "–" for k in ("acc", "nmi", "ari"))
    return vals, str(fig.get("source", ""))


def write_markdown(rows: list[dict[str, Any]], path: Path, header: str) -> Path:
    """results.md: ours (mean ± std over seeds) beside the paper's ACC/NMI/ARI and its source."""
    papers = paper_figures()
    lines = [header, ""]
    lines.append(
        "| dataset | method | seeds | ACC | NMI | ARI | ECE | wall s | paper ACC/NMI/ARI | source |"
    )
    lines.append("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        vals, source = _paper(papers.get(row["method"], {}).get(row["dataset"]))
        cells = [_cell(row, m) for m in ("acc", "nmi", "ari", "ece")]
        wall = _cell(row, "wall_seconds", 0)
        lines.append(
            f"| {row['dataset']} | {row['method']} | {row['seeds']} | {' | '.join(cells)} "
            f"| {wall} | {vals} | {source} |"
        )
    lines += ["", "Mean ± sample standard deviation over seeds; – where a method has no figure."]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return path
