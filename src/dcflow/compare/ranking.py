"""Label-free ranking of a comparison's runs, and how well it agrees with the ACC ranking.

Without labels a user can only order methods by internal criteria, which every run logs to
MLflow as ``internal_<name>`` (:mod:`dcflow.clustering.internal`): the silhouette (Rousseeuw
1987; higher is better), Calinski-Harabasz (Calinski & Harabasz 1974; higher is better) and
Davies-Bouldin (Davies & Bouldin 1979; lower is better), each on the embedding the run clustered.
Each method scores its own embedding, so the criteria compare different spaces: whether their
order tracks accuracy is measured, not assumed. Where runs have labels (an ``acc`` metric), the
agreement is Spearman's rank correlation (Spearman 1904, ``scipy.stats.spearmanr``, ties at their
average rank) between each criterion (Davies-Bouldin negated, so that higher is better for all)
and ACC, over the runs of one cell (dataset, fit split, held-out split: the scores and ``acc`` are
both on the fit split) and over the per-method means. It is undefined with fewer than 3 pairs or
a constant ranking, and printed so (:data:`NA`), never as a number.
"""

from __future__ import annotations

import csv
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from scipy.stats import spearmanr

from dcflow.artifacts import atomic_path

if TYPE_CHECKING:
    from dcflow.compare.report import Record

# (metric suffix, column title, +1 higher is better / -1 lower is better, digits)
CRITERIA: tuple[tuple[str, str, int, int], ...] = (
    ("silhouette", "silhouette ↑", 1, 3),
    ("calinski_harabasz", "Calinski-Harabasz ↑", 1, 1),
    ("davies_bouldin", "Davies-Bouldin ↓", -1, 3),
)
NA = "n/a (n<3 or constant)"
NO_LABELS = "no labels: agreement not measurable"
CSV_COLUMNS = (
    "dataset",
    "split",
    "eval_split",
    "criterion",
    "rho_runs",
    "n_runs",
    "rho_means",
    "n_means",
    "note",
)


def spearman(x: Sequence[float], y: Sequence[float]) -> tuple[float, int]:
    """Spearman's rho of paired values and n; NaN when n < 3 or either side is constant."""
    n = len(x)
    if n < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return math.nan, n
    return float(spearmanr(x, y).statistic), n


def ranks(values: Sequence[float | None], sign: int) -> list[int | None]:
    """Competition ranks (1 = best, ties share the best rank); ``None`` stays unranked."""
    keyed = [sign * v for v in values if v is not None]
    return [None if v is None else 1 + sum(k > sign * v for k in keyed) for v in values]


def _score(metrics: dict[str, float], name: str) -> float | None:
    value = metrics.get(name if name == "acc" else f"internal_{name}")
    return None if value is None or math.isnan(value) else float(value)


@dataclass
class MethodScores:
    """One method (and options) of a cell: its seeds and mean score over the seeds having it."""

    method: str
    options: str
    seeds: list[int] = field(default_factory=list)
    means: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


def cells(records: Sequence[Record]) -> dict[tuple[str, str, str], list[Record]]:
    """Runs per cell of the ranking: dataset, fit split, held-out split."""
    out: dict[tuple[str, str, str], list[Record]] = {}
    for r in records:
        out.setdefault((r.dataset, r.split, r.eval_split), []).append(r)
    return dict(sorted(out.items()))


def method_means(records: Sequence[Record]) -> list[MethodScores]:
    """Per method and options, in the order a user without labels would pick from.

    The order is the mean silhouette (the default criterion), best first; methods without one
    come last.
    """
    groups: dict[tuple[str, str], list[Record]] = {}
    for r in records:
        groups.setdefault((r.method, r.options), []).append(r)
    units = []
    for (method, options), recs in groups.items():
        unit = MethodScores(method, options, [r.seed for r in recs])
        for name in ("acc", "size_entropy", *(c[0] for c in CRITERIA)):
            got = [v for r in recs if (v := _score(r.metrics, name)) is not None]
            if got:
                unit.means[name], unit.counts[name] = statistics.fmean(got), len(got)
        units.append(unit)
    best = CRITERIA[0][0]
    return sorted(units, key=lambda u: (-u.means.get(best, -math.inf), u.method, u.options))


@dataclass(frozen=True)
class Agreement:
    """Spearman's rho between one criterion and ACC, over runs and over method means."""

    criterion: str
    rho_runs: float
    n_runs: int
    rho_means: float
    n_means: int


def _paired(items: Sequence[dict[str, float]], name: str, sign: int) -> tuple[float, int]:
    pairs = [(sign * d[name], d["acc"]) for d in items if name in d and "acc" in d]
    return spearman([p[0] for p in pairs], [p[1] for p in pairs])


def agreement(records: Sequence[Record]) -> list[Agreement] | None:
    """Each criterion's agreement with ACC in one cell; ``None`` when no run has labels."""
    if not any(_score(r.metrics, "acc") is not None for r in records):
        return None
    runs = [
        {
            n: v
            for n in ("acc", *(c[0] for c in CRITERIA))
            if (v := _score(r.metrics, n)) is not None
        }
        for r in records
    ]
    means = [u.means for u in method_means(records)]
    out = []
    for name, _, sign, _ in CRITERIA:
        rho_runs, n_runs = _paired(runs, name, sign)
        rho_means, n_means = _paired(means, name, sign)
        out.append(Agreement(name, rho_runs, n_runs, rho_means, n_means))
    return out


def _rho(rho: float, n: int) -> str:
    return NA if math.isnan(rho) else f"{rho:.2f} ({n})"


def _value(v: float | None, digits: int, rank: int | None = None, of: str = "") -> str:
    if v is None:
        return "–"
    return f"{v:.{digits}f}" + (f" ({rank})" if rank else "") + (f" [{of}]" if of else "")


def _cell_markdown(key: tuple[str, str, str], records: Sequence[Record]) -> list[str]:
    dataset, split, eval_split = key
    title = f"### {dataset}, fit split {split}" + (f", held-out {eval_split}" if eval_split else "")
    units = method_means(records)
    lines = [title, "", "| pick | method | options | seeds | "]
    lines[-1] += " | ".join(c[1] for c in CRITERIA) + " | size entropy | ACC |"
    lines.append("|" + "---|" * (len(CRITERIA) + 6))
    unit_ranks = {c[0]: ranks([u.means.get(c[0]) for u in units], c[2]) for c in CRITERIA}
    for i, u in enumerate(units):
        cols = []
        for name, _, _, digits in CRITERIA:
            n = u.counts.get(name, 0)
            of = f"{n}/{len(u.seeds)} seeds" if 0 < n < len(u.seeds) else ""
            cols.append(_value(u.means.get(name), digits, unit_ranks[name][i], of))
        cols += [_value(u.means.get("size_entropy"), 3), _value(u.means.get("acc"), 3)]
        pick = str(i + 1) if "silhouette" in u.means else "–"
        seeds = " ".join(str(s) for s in u.seeds)
        lines.append(f"| {pick} | {u.method} | {u.options} | {seeds} | {' | '.join(cols)} |")
    found = agreement(records)
    lines.append("")
    if found is None:
        lines.append(f"Agreement with ACC: {NO_LABELS}.")
    else:
        lines += ["| criterion | rho over runs (n) | rho over method means (n) |", "|---|---|---|"]
        for a in found:
            lines.append(
                f"| {a.criterion} | {_rho(a.rho_runs, a.n_runs)} | {_rho(a.rho_means, a.n_means)} |"
            )
    lines += ["", _runs_details(records), ""]
    return lines


def _runs_details(records: Sequence[Record]) -> str:
    """Every run ranked by each criterion (and by ACC where it has one), in a folded table."""
    names = [*(c[0] for c in CRITERIA), "acc"]
    signs = {**{c[0]: c[2] for c in CRITERIA}, "acc": 1}
    digits = {**{c[0]: c[3] for c in CRITERIA}, "acc": 3}
    vals = {n: [_score(r.metrics, n) for r in records] for n in names}
    rk = {n: ranks(vals[n], signs[n]) for n in names}
    order = sorted(range(len(records)), key=lambda i: (rk["silhouette"][i] or math.inf, i))
    head = "| method | options | seed | " + " | ".join(c[1] for c in CRITERIA) + " | ACC |"
    rows = [head, "|" + "---|" * (len(names) + 3)]
    for i in order:
        r = records[i]
        cols = [_value(vals[n][i], digits[n], rk[n][i]) for n in names]
        rows.append(f"| {r.method} | {r.options} | {r.seed} | {' | '.join(cols)} |")
    summary = f"<summary>each run, value (rank among the {len(records)} runs)</summary>"
    return "\n".join(["<details>", summary, "", *rows, "", "</details>"])


def markdown(records: Sequence[Record]) -> list[str]:
    """The results.md section: per cell, methods in label-free pick order, then the agreement."""
    lines = [
        "## Label-free ranking",
        "",
        "What a user without labels can rank by: internal criteria on the embedding each run "
        "clustered (mean over seeds, rank among the methods in parentheses; pick = order by mean "
        "silhouette, the default criterion). Each method scores its own embedding, so where "
        "labels exist the tables below measure whether the criterion's order follows ACC: "
        "Spearman's rho (Davies-Bouldin negated so that higher is better for all) over the runs "
        f"and over the method means of the cell; {NA} where it is undefined. "
        "[k/n seeds]: the criterion was logged for k of the n seeds only.",
        "",
    ]
    for key, recs in cells(records).items():
        lines += _cell_markdown(key, recs)
    return lines


def _number(rho: float) -> str:
    return "" if math.isnan(rho) else f"{rho:.4f}"


def write_csv(records: Sequence[Record], path: Path) -> Path:
    """ranking.csv: one row per cell and criterion; rho empty where undefined (see ``note``)."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for (dataset, split, eval_split), recs in cells(records).items():
            found = agreement(recs)
            for a in found or [Agreement(c[0], math.nan, 0, math.nan, 0) for c in CRITERIA]:
                undefined = math.isnan(a.rho_runs) or math.isnan(a.rho_means)
                writer.writerow(
                    {
                        "dataset": dataset,
                        "split": split,
                        "eval_split": eval_split,
                        "criterion": a.criterion,
                        "rho_runs": _number(a.rho_runs),
                        "n_runs": a.n_runs,
                        "rho_means": _number(a.rho_means),
                        "n_means": a.n_means,
                        "note": NO_LABELS if found is None else NA if undefined else "",
                    }
                )
    return path
