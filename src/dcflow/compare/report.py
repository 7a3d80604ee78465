"""Aggregate a comparison's runs into results.csv and results.md (mean and spread per cell).

Records come from MLflow (:func:`dcflow.tracking.pipeline_runs`), so the report can be rebuilt from
the tracking server alone. The paper's figure is printed beside ours where the paper reports one.
"""

from __future__ import annotations

import csv
import json
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from dcflow.artifacts import atomic_path
from dcflow.compare import ranking
from dcflow.compare.tuning import tuned_on
from dcflow.errors import DataError

HELDOUT = ("heldout_acc", "heldout_nmi", "heldout_ari", "heldout_ece")
METRICS = ("acc", "nmi", "ari", "ece", "wall_seconds", *HELDOUT)
PAPERS = Path(__file__).with_name("papers.yaml")


@dataclass(frozen=True)
class Record:
    """One finished pipeline run of the comparison.

    ``split`` is the split it was fitted on, ``eval_split`` the held-out one ("" without),
    ``options`` ``on`` (the preset) or ``off`` (its tuned options at the paper's values),
    ``proba_kind`` what its ECE measures (``model``, ``constructed`` or ``none``).
    """

    method: str
    dataset: str
    seed: int
    metrics: dict[str, float]
    run_id: str
    start_time: int = 0
    split: str = "all"
    eval_split: str = ""
    options: str = "on"
    proba_kind: str = "model"

    @property
    def cell(self) -> tuple[str, str, str, str, str]:
        """The row this run belongs to: dataset, split, held-out split, method, options."""
        return (self.dataset, self.split, self.eval_split, self.method, self.options)


def _scored(metrics: dict[str, float]) -> bool:
    """Evaluate logged this run: ``acc`` with labels, the internal scores with or without."""
    return "acc" in metrics or any(k.startswith("internal_") for k in metrics)


def records_from_runs(runs: list[dict[str, Any]]) -> list[Record]:
    """MLflow parent runs -> records, keeping the latest run of each cell and seed.

    Runs without labels (no ``acc``) are kept when evaluate logged their internal scores: they
    have a row with ``–`` for the label metrics and a place in the label-free ranking.
    """
    latest: dict[tuple[tuple[str, ...], int], Record] = {}
    for r in sorted(runs, key=lambda r: r["start_time"] or 0):
        t = r["tags"]
        if "method" not in t or "dataset" not in t or not _scored(r["metrics"]):
            continue
        rec = Record(
            t["method"], t["dataset"], int(t.get("seed", 0)), r["metrics"], r["run_id"],
            start_time=int(r["start_time"] or 0),
            split=t.get("split", "all"), eval_split=t.get("eval_split", ""),
            options=t.get("options", "on"), proba_kind=t.get("proba_kind", "model"),
        )  # fmt: skip
        latest[(rec.cell, rec.seed)] = rec
    return sorted(latest.values(), key=lambda r: (*r.cell, r.seed))


LEDGER = "records.json"
"""A comparison's finished runs (tags and metrics, no artifacts) in its ``--out`` directory."""


def save_ledger(records: Sequence[Record], path: Path) -> Path:
    """Write ``records`` as JSON (atomically): what a later ``compare`` resumes from."""
    rows = [asdict(r) for r in sorted(records, key=lambda r: (*r.cell, r.seed))]
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(rows, indent=1, sort_keys=True) + "\n")
    return path


def load_ledger(path: Path) -> list[Record]:
    """The records of a ledger file; none when it does not exist.

    Raises:
        DataError: the file is not a ledger written by :func:`save_ledger`.
    """
    if not path.is_file():
        return []
    try:
        return [Record(**row) for row in json.loads(path.read_text())]
    except (ValueError, TypeError) as exc:
        raise DataError(f"{path}: not a comparison ledger ({exc})") from None


def merge_records(*groups: Sequence[Record]) -> list[Record]:
    """One record per cell and seed: the latest start time wins.

    Two copies of one run (same start time: a ledger's and MLflow's) keep the one with more
    metrics, whatever the order of ``groups``: a ledger written while the run was still logging
    (``wall_seconds`` comes last) must not hide the complete copy.
    """
    latest: dict[tuple[tuple[str, ...], int], Record] = {}
    for r in sorted((r for g in groups for r in g), key=lambda r: (r.start_time, len(r.metrics))):
        latest[(r.cell, r.seed)] = r
    return sorted(latest.values(), key=lambda r: (*r.cell, r.seed))


def _stat(values: list[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    return mean, statistics.stdev(values) if len(values) > 1 else 0.0


def aggregate(records: list[Record]) -> list[dict[str, Any]]:
    """One row per cell (dataset, split, held-out split, method, options): n seeds, mean/std."""
    groups: dict[tuple[str, ...], list[Record]] = {}
    for r in records:
        groups.setdefault(r.cell, []).append(r)
    rows = []
    for (dataset, split, eval_split, method, options), recs in sorted(groups.items()):
        row: dict[str, Any] = {"dataset": dataset, "method": method, "n": len(recs)}
        row.update(split=split, eval_split=eval_split, options=options)
        row["proba_kind"] = recs[0].proba_kind
        row["tuned_on"] = " ".join(tuned_on(method, dataset)) if options == "on" else ""
        row["seeds"] = " ".join(str(r.seed) for r in recs)
        for m in METRICS:
            vals = [r.metrics[m] for r in recs if m in r.metrics]
            if len(vals) == len(recs):
                row[f"{m}_mean"], row[f"{m}_std"] = _stat(vals)
        rows.append(row)
    return rows


def paper_figures() -> dict[str, list[dict[str, Any]]]:
    """The papers' figures with their sources (``papers.yaml``), per method."""
    return {m: list(v) for m, v in yaml.safe_load(PAPERS.read_text()).items()}


def paper_figure(method: str, dataset: str, split: str) -> dict[str, Any] | None:
    """The paper's figure for this dataset, preferring the one on the same split."""
    figs = [f for f in paper_figures().get(method, []) if f["dataset"] == dataset]
    same = [f for f in figs if f["split"] == split]
    found = same or figs
    return found[0] if found else None


def write_csv(rows: list[dict[str, Any]], path: Path) -> Path:
    """results.csv: one row per cell, mean and std columns."""
    cols = ["dataset", "split", "eval_split", "method", "options", "tuned_on", "proba_kind"]
    cols += ["n", "seeds"] + [f"{m}_{s}" for m in METRICS for s in ("mean", "std")]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: f"{v:.4f}" if isinstance(v, float) else v for k, v in row.items()})
    return path


SPREAD_FLAG = 0.05  # ACC std over seeds above which a row says so (issue 20)


def _cell(row: dict[str, Any], m: str, digits: int = 3) -> str:
    if f"{m}_mean" not in row:
        return "–"
    mean, std = row[f"{m}_mean"], row[f"{m}_std"]
    text = f"{mean:.{digits}f} ± {std:.{digits}f}" if row["n"] > 1 else f"{mean:.{digits}f}"
    if m.endswith("acc") and std > SPREAD_FLAG:
        text += " ⚠"
    if m.endswith("ece") and row.get("proba_kind") == "constructed":
        text += " ᶜ"
    return text


def _paper(fig: dict[str, Any] | None) -> tuple[str, str]:
    if not fig:
        return "–", ""
    recalled = set(fig.get("recalled", []))
    vals = "/".join(
        f"{fig[k]:.3f}{'ʳ' if k in recalled else ''}" if k in fig else "–"
        for k in ("acc", "nmi", "ari")
    )
    where = f"{fig['split']}, {fig['subset']}, {fig['backbone']}"
    return f"{vals} ({where})", str(fig.get("source", ""))


def write_markdown(
    rows: list[dict[str, Any]], path: Path, header: str, records: Sequence[Record] = ()
) -> Path:
    """results.md: ours (mean ± std over seeds), held-out beside fit, the paper's figure.

    With ``records``, the label-free ranking and its agreement with ACC follow
    (:mod:`dcflow.compare.ranking`).
    """
    lines = [header, ""]
    lines.append(
        "| dataset | fit split | method | options | seeds | ACC | NMI | ARI | ECE "
        "| held-out | held-out ACC | held-out NMI | held-out ARI | wall s "
        "| paper ACC/NMI/ARI (split, subset, backbone) | source |"
    )
    lines.append("|" + "---|" * 16)
    for row in rows:
        fig = paper_figure(row["method"], row["dataset"], row.get("eval_split") or row["split"])
        vals, source = _paper(fig)
        fit = [_cell(row, m) for m in ("acc", "nmi", "ari", "ece")]
        held = [_cell(row, f"heldout_{m}") for m in ("acc", "nmi", "ari")]
        method = row["method"] + (" †" if row.get("tuned_on") else "")
        lines.append(
            f"| {row['dataset']} | {row.get('split', 'all')} | {method} "
            f"| {row.get('options', 'on')} | {row['seeds']} | {' | '.join(fit)} "
            f"| {row.get('eval_split') or '–'} | {' | '.join(held)} "
            f"| {_cell(row, 'wall_seconds', 0)} | {vals} | {source} |"
        )
    lines += [
        "",
        "Mean ± sample standard deviation over seeds; – where a method has no figure. "
        "options: `on` is the preset, `off` the preset with every tuned option at the paper's "
        "value (`configs/<method>/tuning.yaml`; budgets and backbones kept). "
        "† the preset has options chosen with labels of this dataset: "
        + (
            "; ".join(f"{r['method']}: {r['tuned_on']}" for r in rows if r.get("tuned_on"))
            or "none here"
        )
        + f". ⚠ ACC spread over seeds above {SPREAD_FLAG}. ᶜ ECE of a constructed probability "
        "(a softmax over distances to centres, not a trained output). ʳ a figure recalled from "
        "the paper that its spec could not verify.",
    ]
    if records:
        lines += ["", *ranking.markdown(records)]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return path
