"""Ablation: ProPos vs HaDis under identical settings (same data, seeds, epochs, schedules).

HaDis = ProPos + HSD, so both runs use the same preset except for the ``hsd`` section (the
pitfall-1 remedy of ``shared/methods/hadis.md``: compare only under identical settings). Each
(method, seed) pair is one ``dcflow run`` through the local KFP pipeline; the table gives the mean
and the sample standard deviation over seeds.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/ablation_hadis.py --dataset digits --seeds 0 1 2
    OMP_NUM_THREADS=1 python benchmarks/ablation_hadis.py --dataset usps \
        --data-dir ../shared/data --seeds 0 1 2 --out ablation-usps.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from dcflow.cli import main as dcflow_main

METHODS = ("propos", "hadis")
METRICS = ("acc", "nmi", "ari", "ece")


def run_one(method: str, dataset: str, seed: int, data_dir: str | None, extra: list[str]) -> dict:
    """One ``dcflow run``; returns its summary (metrics, stage seconds, wall seconds)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "summary.json"
        args = ["run", method, "--dataset", dataset, "--seed", str(seed), "--quiet"]
        args += ["--data-dir", data_dir] if data_dir else []
        args += [a for s in ["threads=1", *extra] for a in ("--set", s)]
        if dcflow_main([*args, "--json", str(out)]) != 0:
            raise SystemExit(f"dcflow run {method} seed {seed} failed")
        return json.loads(out.read_text())


def table(results: dict[str, list[dict]]) -> str:
    """Markdown table: one row per method, ``mean +- std`` over seeds."""
    lines = ["| method | seeds | " + " | ".join(m.upper() for m in METRICS) + " | wall s |"]
    lines.append("|" + "---|" * (len(METRICS) + 3))
    for method, runs in results.items():
        cells = []
        for key in [*METRICS, "wall_seconds"]:
            vals = [
                r["metrics"].get(key, float("nan")) if key != "wall_seconds" else r[key]
                for r in runs
            ]
            std = statistics.stdev(vals) if len(vals) > 1 else 0.0
            cells.append(f"{statistics.mean(vals):.3f} ± {std:.3f}")
        lines.append(f"| {method} | {len(runs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run both methods for every seed and print the comparison table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="digits")
    p.add_argument("--data-dir")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--set", action="append", default=[], help="extra override for both methods")
    p.add_argument("--out", help="write every run's metrics as JSON")
    args = p.parse_args(argv)
    results: dict[str, list[dict]] = {m: [] for m in METHODS}
    for seed in args.seeds:
        for method in METHODS:
            s = run_one(method, args.dataset, seed, args.data_dir, args.set)
            results[method].append(
                {"seed": seed, "metrics": s["metrics"], "wall_seconds": s["wall_seconds"]}
            )
            print(f"{method} seed {seed}: {s['metrics']} ({s['wall_seconds']:.0f}s)", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
