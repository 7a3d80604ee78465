"""``dcflow sweep-k METHOD --dataset D --k A:B``: choose the number of clusters without labels.

One pretrain is shared by every K (one per K for methods whose weights depend on K, CC and
ULDC); the method's cluster-init runs for each K as a KFP ``ParallelFor``, each scored by internal
criteria on its own embedding (silhouette, Calinski-Harabasz, Davies-Bouldin; cluster-size entropy
is shown, never chosen by). K is the best under ``--criterion`` (default silhouette); every
criterion's own pick is printed beside it. The table, ``sweep.json`` and ``sweep_k.png`` go to
MLflow (one ``sweep`` run, each score logged against K as the step) and to the artifacts.
``dataset.n_clusters=auto`` makes ``dcflow run`` do this first, over ``dataset.k_range``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from dcflow.clustering.choose_k import CRITERIA, DEFAULT_CRITERION, parse_k_range


def add_parser(sub: argparse._SubParsersAction, add_run_args: Any) -> None:
    """Register ``sweep-k`` (``add_run_args`` adds the arguments it shares with ``run``)."""
    p = sub.add_parser(
        "sweep-k",
        help="choose the number of clusters K by internal criteria (no labels)",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else "",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_run_args(p)
    p.add_argument(
        "--k",
        dest="k_range",
        default=None,
        metavar="A:B",
        help="candidate Ks: A:B (inclusive), A:B:STEP or 5,8,10 (default dataset.k_range, 2:15)",
    )
    p.add_argument(
        "--criterion",
        choices=sorted(CRITERIA),
        default=DEFAULT_CRITERION,
        help=f"what K is chosen by (default {DEFAULT_CRITERION})",
    )
    p.add_argument(
        "--artifacts", metavar="DIR", default=".dcflow/runs", help="stage artifacts (local)"
    )
    p.add_argument("--weights-store", metavar="URI", default=None, help="as in `dcflow run`")
    p.add_argument("--experiment", default="dcflow", help="MLflow experiment (default dcflow)")
    p.add_argument("--json", metavar="FILE", help="write the sweep summary as JSON")
    p.add_argument("--quiet", action="store_true", help="print only the table")


def run_sweep(
    cfg: Any,
    ks: list[int],
    criterion: str,
    artifacts: Path,
    store: str,
    uri: str,
    experiment: str,
    quiet: bool,
    runner: Any,
) -> dict[str, Any]:
    """Run the sweep pipeline for ``cfg`` over ``ks``; return the choose-k summary.

    ``cfg.dataset.n_clusters`` is set to the first K for the shared stages (their weights do not
    depend on K, or they run once per K). ``runner`` is ``dcflow_pipelines.local.run_sweep_local``,
    handed in by cli.py, the one library module that imports the pipelines layer.
    """
    base = cfg.model_copy(update={"dataset": cfg.dataset.model_copy(update={"n_clusters": ks[0]})})
    name = Path(cfg.dataset.name.partition(":")[2] or cfg.dataset.name).name or "data"
    log = (
        Path(".dcflow/logs").resolve()
        / f"sweep-{cfg.method}-{name}-{time.strftime('%Y%m%d-%H%M%S')}.log"
    )
    if not quiet:
        print(
            f"dcflow sweep-k {cfg.method} on {cfg.dataset.name}: K in {ks} by {criterion}; "
            f"log: {log}",
            file=sys.stderr,
        )
    return runner(base, ks, criterion, artifacts.resolve(), store, uri, experiment, log, quiet)


def print_sweep(summary: dict[str, Any]) -> None:
    """The score table (one row per K, the chosen row marked) and the reason."""
    names = ("silhouette", "calinski_harabasz", "davies_bouldin", "size_entropy")
    print(f"\n{'K':>4s}  " + "  ".join(f"{n[:18]:>18s}" for n in names))
    for k, scores in summary["table"].items():
        mark = " <-" if int(k) == summary["k"] else ""
        cells = "  ".join(f"{scores.get(n, float('nan')):18.4f}" for n in names)
        print(f"{k:>4s}  {cells}{mark}")
    print(f"\nchosen K = {summary['k']}: {summary['reason']}")


def cmd_sweep(args: argparse.Namespace, build_config: Any, prepare: Any, runner: Any) -> int:
    """Run ``dcflow sweep-k`` (inside the CLI's stage-cache context).

    Args:
        args: parsed arguments.
        build_config: the CLI's config builder (run arguments -> RunConfig).
        prepare: the CLI's service checks (config -> (weights store, tracking URI)).
        runner: the local sweep runner (:func:`run_sweep`).
    """
    from dcflow.artifacts import atomic_path

    started = time.time()
    cfg = build_config(args)
    ks = parse_k_range(args.k_range or cfg.dataset.k_range)
    store, uri = prepare(cfg)
    summary = run_sweep(
        cfg,
        ks,
        args.criterion,
        Path(args.artifacts),
        store,
        uri,
        args.experiment,
        args.quiet,
        runner,
    )
    summary["wall_seconds"] = round(time.time() - started, 3)
    if args.json:
        with atomic_path(Path(args.json)) as tmp:
            tmp.write_text(json.dumps(summary, indent=2) + "\n")
    print_sweep(summary)
    return 0
