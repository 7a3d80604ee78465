"""``dcflow compare`` and ``dcflow report``: argument parsing and the two commands."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dcflow.errors import ConfigError, StageError

DEFAULT_EXPERIMENT = "dcflow-compare"


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register the ``compare`` and ``report`` sub-commands."""
    cmp = sub.add_parser(
        "compare",
        help="run methods x datasets x seeds and write a side-by-side report",
        description="Run every METHOD x DATASET x SEED through the local pipelines (one "
        "dcflow run per cell, tagged with the comparison id in MLflow), then write results.csv, "
        "results.md (with the label-free ranking), ranking.csv and plots into --out from MLflow. "
        "Re-running the same command resumes: finished cells are reused, only missing or failed "
        "ones run.",
    )
    cmp.add_argument("--methods", required=True, help="comma-separated method names, or all")
    cmp.add_argument("--datasets", default="digits", help="comma-separated (default digits)")
    cmp.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    cmp.add_argument("--data-dir", help="directory holding <dataset>.npz")
    cmp.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="[METHOD:]KEY=VALUE",
        help="override for every method, or for one with a METHOD: prefix (repeatable)",
    )
    cmp.add_argument(
        "--split",
        choices=["all", "train", "test"],
        default="all",
        help="fit every run on this split (default all: train + test pooled)",
    )
    cmp.add_argument(
        "--eval-split",
        choices=["train", "test"],
        help="held-out protocol: score this other split through predict (reported apart)",
    )
    cmp.add_argument(
        "--options",
        choices=["on", "off", "both"],
        default="on",
        help="on: the presets; off: the presets with every tuned option at the paper's value "
        "(configs/<method>/tuning.yaml); both: one row of each",
    )
    cmp.add_argument("--out", required=True, help="directory for runs, results and plots")
    cmp.add_argument("--experiment", default=None, help=f"MLflow experiment ({DEFAULT_EXPERIMENT})")
    cmp.add_argument("--id", default="", help="comparison id (default: derived from the grid)")
    rep = sub.add_parser(
        "report",
        help="rebuild results.md, results.csv, ranking.csv and the plots from MLflow (no re-run)",
        description="Rebuild a comparison's report from the MLflow tracking server alone.",
    )
    rep.add_argument("--experiment", default=DEFAULT_EXPERIMENT, help="MLflow experiment name")
    rep.add_argument("--comparison", default="", help="comparison id (default: every run)")
    rep.add_argument("--out", required=True, help="directory for results and plots")
    rep.add_argument(
        "--no-log", action="store_true", help="do not log the report as a comparison run"
    )


def _plan(args: argparse.Namespace) -> tuple[object, Path]:
    from dcflow.compare.plan import Plan, load_or_create, parse_list, parse_seeds
    from dcflow.data.registry import get_dataset_loader
    from dcflow.methods.registry import get_method, method_names

    methods = method_names() if args.methods == "all" else parse_list(args.methods, "methods")
    for m in methods:
        get_method(m)
    datasets = parse_list(args.datasets, "datasets")
    for d in datasets:
        if not d.startswith(("npz:", "folder:", "csv:", "s3://")):
            get_dataset_loader(d)
    data_dir = str(Path(args.data_dir).expanduser().resolve()) if args.data_dir else ""
    plan = Plan(methods, datasets, parse_seeds(args.seeds), data_dir, list(args.overrides))
    if args.eval_split and args.split in ("all", args.eval_split):
        raise ConfigError("--eval-split needs --split train or test, and the other split")
    plan.split, plan.eval_split = args.split, args.eval_split or ""
    plan.options = ["on", "off"] if args.options == "both" else [args.options]
    plan.experiment = args.experiment or DEFAULT_EXPERIMENT
    plan.comparison = args.id
    out = Path(args.out).expanduser().resolve()
    return load_or_create(out, plan), out


def cmd_compare(args: argparse.Namespace) -> int:
    """Run the missing cells, then build the report from MLflow."""
    from dcflow import tracking
    from dcflow.compare.build import build_report
    from dcflow.compare.plan import Plan
    from dcflow.compare.runner import run_grid, scoped_overrides

    plan, out = _plan(args)
    assert isinstance(plan, Plan)
    for m in plan.methods:  # a bad METHOD: prefix fails before anything runs
        scoped_overrides(plan.overrides, m, plan.methods)
    tracking.check_reachable(tracking.resolve_tracking_uri())
    print(
        f"comparison {plan.comparison}: {len(plan.keys())} runs ({len(plan.methods)} methods x "
        f"{len(plan.datasets)} datasets x {len(plan.seeds)} seeds x options "
        f"{'/'.join(plan.options)}) -> {out}",
        file=sys.stderr,
    )
    outcome = run_grid(plan, out)
    counts = {"reused": len(outcome.reused), "ran": len(outcome.ran), "failed": len(outcome.failed)}
    (out / "counts.json").write_text(json.dumps(counts) + "\n")
    if outcome.reused or outcome.ran:
        files = build_report("", plan.experiment, plan.comparison, out)
        print(f"report: {out / 'results.md'} ({len(files)} files)")
    print(f"runs: {counts['reused']} reused, {counts['ran']} ran, {counts['failed']} failed")
    if outcome.failed:
        first = next(iter(outcome.failed.items()))
        raise StageError(
            f"{len(outcome.failed)} run(s) failed, e.g. {first[0].slug}: {first[1]}; "
            "re-run the same command to retry them"
        )
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Rebuild the report of ``--comparison`` (or of every run) from MLflow."""
    from dcflow.compare.build import build_report

    files = build_report(
        "", args.experiment, args.comparison, Path(args.out), log_to_mlflow=not args.no_log
    )
    print(f"report: {Path(args.out) / 'results.md'} ({len(files)} files)")
    return 0


def dispatch(args: argparse.Namespace) -> int:
    """Run ``compare`` or ``report``."""
    if args.command == "compare":
        return cmd_compare(args)
    if args.command == "report":
        return cmd_report(args)
    raise ConfigError(f"unknown command {args.command}")
