"""Data-parallel training on one machine: ``dcflow run METHOD --nproc N`` against ``--nproc 1``.

Usage::

    python benchmarks/nproc_bench.py [--method cc] [--dataset digits] [--nprocs 1,2]
                                     [--seeds 0,1,2] [--threads 1] [--set KEY=VALUE ...]
                                     [--json FILE]

Every cell is one full ``dcflow run`` (the local KFP pipeline, the preset of METHOD on DATASET)
in a fresh working directory, so no cell reuses another's cached weights. ``--nproc N`` trains
the pretrain stage in N torchrun processes (gloo on CPU) on the same global batch; each process
runs ``--threads`` threads. Prints a markdown table per ``--nproc``: ACC/NMI/ARI as mean ± sample
std over the seeds, and the pretrain stage's training throughput (``samples_per_second``: global
samples per second of the training loop alone, without torchrun's start-up) with its ratio to
``--nproc 1``, and the wall time (start-up included) of the pretrain stage and of cluster-init and
refine where the method has them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

DCFLOW = [sys.executable, "-m", "dcflow.cli"]
LATER = ("cluster-init", "refine")  # stages that may train data-parallel after pretrain


def run_cell(
    method: str, dataset: str, seed: int, nproc: int, threads: int, sets: list[str]
) -> dict[str, Any]:
    """One ``dcflow run`` in a fresh directory; its ``--json`` summary."""
    with tempfile.TemporaryDirectory(prefix="dcflow-nproc-") as tmp:
        cmd = [
            *DCFLOW,
            "run",
            method,
            "--dataset",
            dataset,
            "--seed",
            str(seed),
            "--nproc",
            str(nproc),
        ]
        cmd += ["--set", f"threads={threads}", "--quiet", "--json", "out.json"]
        for item in sets:
            cmd += ["--set", item]
        proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            sys.exit(f"nproc_bench: {' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
        summary: dict[str, Any] = json.loads((Path(tmp) / "out.json").read_text())
    return summary


def _mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def main(argv: list[str] | None = None) -> int:
    """Run the grid and print the table."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--method", default="cc")
    p.add_argument("--dataset", default="digits")
    p.add_argument("--nprocs", default="1,2")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--set", dest="sets", action="append", default=[])
    p.add_argument("--json", default="")
    args = p.parse_args(argv)
    nprocs = [int(n) for n in args.nprocs.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    cells: list[dict[str, Any]] = []
    for seed in seeds:  # interleaved, so that machine load drifts hit every N alike
        for nproc in nprocs:
            s = run_cell(args.method, args.dataset, seed, nproc, args.threads, args.sets)
            pre = s["stages"]["pretrain"]
            cell = {
                "nproc": nproc,
                "seed": seed,
                **{k: s["metrics"][k] for k in ("acc", "nmi", "ari")},
                "samples_per_second": pre["metrics"]["samples_per_second"],
                "pretrain_seconds": pre["seconds"],
                **{
                    f"{st}_seconds": s["stages"][st]["seconds"] for st in LATER if st in s["stages"]
                },
            }
            print(json.dumps(cell), file=sys.stderr, flush=True)
            cells.append(cell)
    base = statistics.mean(c["samples_per_second"] for c in cells if c["nproc"] == nprocs[0])
    print(f"{args.method} on {args.dataset}, seeds {args.seeds}, {args.threads} thread(s)/process")
    print()
    later = [st for st in LATER if all(f"{st}_seconds" in c for c in cells)]
    head = "".join(f" {st} wall s |" for st in later)
    print(f"| --nproc | ACC | NMI | ARI | samples/s | vs first row | pretrain wall s |{head}")
    print("|---|---|---|---|---|---|---|" + "---|" * len(later))
    for n in nprocs:
        rows = [c for c in cells if c["nproc"] == n]
        rate = statistics.mean(c["samples_per_second"] for c in rows)
        walls = [statistics.mean(c[f"{st}_seconds"] for c in rows) for st in ("pretrain", *later)]
        scores = " | ".join(_mean_std([c[m] for c in rows]) for m in ("acc", "nmi", "ari"))
        cols = " | ".join(f"{w:.0f}" for w in walls)
        print(f"| {n} | {scores} | {rate:.0f} | {rate / base:.2f}× | {cols} |")
    if args.json:
        Path(args.json).write_text(json.dumps(cells, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
