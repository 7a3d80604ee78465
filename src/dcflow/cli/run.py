"""``dcflow run``: execute a method's pipeline locally and print its summary."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from dcflow.cli.setup import (
    build_config,
    default_image,
    docker_plan,
    parse_tags,
    prepare,
    stage_cache,
)
from dcflow.errors import DcflowError


def print_table(summary: dict[str, Any]) -> None:
    """The stage table, the metrics and the held-out line of a run summary, on stdout."""
    print(f"\n{'stage':28s} {'seconds':>8s}  notes")
    for stage, rep in summary["stages"].items():
        notes = (
            ("skipped (cached weights)" if stage == "pretrain" else "reused (--resume)")
            if rep["skipped"]
            else " ".join(f"{k}={v:.4g}" for k, v in list(rep["metrics"].items())[:4])
        )
        print(f"{stage:28s} {rep['seconds']:8.1f}  {notes}")
    m = summary["metrics"]
    shown = "  ".join(f"{k.upper()} {v:.4f}" for k, v in m.items()) or "no labels: metrics omitted"
    print(
        f"\n{summary['method']} on {summary['dataset']} (n={summary['n_samples']}, seed "
        f"{summary['seed']}): {shown}   wall {summary['wall_seconds']:.1f}s"
    )
    internal = summary.get("internal", {})
    if internal:
        scores = "  ".join(f"{k} {v:.3f}" for k, v in internal.items())
        print(f"label-free: {scores}; cluster sizes {summary.get('cluster_sizes')}")
    held = summary.get("heldout")
    if held:
        shown = "  ".join(f"{k.upper()} {v:.4f}" for k, v in held["metrics"].items())
        print(f"held-out {held['split']} split (n={held['n_samples']}, not fitted on): {shown}")


def _resolve_auto_k(
    args: argparse.Namespace, cfg: Any, store: str, uri: str
) -> tuple[Any, dict[str, Any]]:
    """``dataset.n_clusters=auto``: sweep ``dataset.k_range`` first; the config with that K."""
    from dcflow_pipelines.local import run_sweep_local

    from dcflow.clustering.choose_k import DEFAULT_CRITERION, parse_k_range
    from dcflow.sweep_cli import run_sweep

    ks = parse_k_range(cfg.dataset.k_range)
    root = Path(".dcflow/runs") if args.artifacts.startswith("s3://") else Path(args.artifacts)
    with stage_cache(args.resume):
        sweep = run_sweep(
            cfg,
            ks,
            DEFAULT_CRITERION,
            root,
            store,
            uri,
            args.experiment,
            args.quiet,
            run_sweep_local,
        )
    if not args.quiet:
        print(f"dcflow: n_clusters=auto -> K={sweep['k']}: {sweep['reason']}", file=sys.stderr)
    dataset = cfg.dataset.model_copy(update={"n_clusters": int(sweep["k"])})
    tags = {**cfg.tags, "n_clusters": "auto", "auto_k_reason": sweep["reason"][:250]}
    summary = {k: sweep[k] for k in ("k", "criterion", "reason", "picks", "table")}
    return cfg.model_copy(update={"dataset": dataset, "tags": tags}), summary


def execute_run(args: argparse.Namespace, started: float | None = None) -> dict[str, Any]:
    """Run a method's pipeline as ``dcflow run`` does; return the run summary (nothing printed).

    The code path of ``dcflow run`` and of :func:`dcflow.cluster`: config, service checks, the
    ``n_clusters=auto`` sweep, :func:`dcflow_pipelines.local.run_local`, the artifact upload.

    Args:
        args: the ``run`` sub-command's namespace (``_parser().parse_args(["run", ...])``).
        started: wall-clock start of the command (default: now).

    Returns:
        The summary, in the order of ``--json``: method, dataset, metrics, internal scores,
        stages, ``mlflow`` ids, ``artifacts`` (the run directory or its s3:// copy), ...

    Raises:
        DcflowError: any error a user can cause (bad config, data, weights, service, stage).
    """
    import tempfile

    from dcflow_pipelines.local import run_local

    from dcflow import tracking
    from dcflow.storage import check_s3_writable

    started = started or time.time()
    cfg = build_config(args)
    cfg = cfg.model_copy(update={"tags": {**cfg.tags, **parse_tags(args.tags)}})
    if args.runner == "docker":  # before anything is written: dockerd answers, the image exists
        from dcflow_pipelines.docker_runner import check_image

        args.image = args.image or os.environ.get("DCFLOW_IMAGE") or default_image()
        check_image(args.image)
    store, uri = prepare(args, cfg)
    remote = args.artifacts.startswith("s3://")
    # every store a stage will write must take writes now, not after hours of training
    if remote:
        check_s3_writable(args.artifacts, "artifact store")
    sweep: dict[str, Any] | None = None
    if cfg.dataset.n_clusters == "auto":
        cfg, sweep = _resolve_auto_k(args, cfg, store, uri)
    root = (
        Path(tempfile.mkdtemp(prefix="dcflow-run-")) if remote else Path(args.artifacts).resolve()
    )
    log = (
        Path(".dcflow/logs").resolve()
        / f"{cfg.method}-{cfg.dataset.name.replace('/', '_')}-{time.strftime('%Y%m%d-%H%M%S')}.log"
    )
    if not args.quiet:
        print(
            f"dcflow run {cfg.method} on {cfg.dataset.name} (seed {cfg.seed}); log: {log}",
            file=sys.stderr,
        )
    with stage_cache(args.resume):
        plan = docker_plan(args, cfg, store, uri) if args.runner == "docker" else None
        summary = run_local(
            cfg, root, store, uri, args.experiment, log, quiet=args.quiet, docker=plan
        )
    if remote:
        import shutil

        from dcflow.storage import upload_dir

        local = summary["artifacts"]
        target = f"{args.artifacts.rstrip('/')}/{Path(local).name}"
        upload_dir(local, target)
        summary["artifacts"] = target
        summary["predictions"] = summary["predictions"].replace(local, target, 1)
        shutil.rmtree(root, ignore_errors=True)  # the bucket holds the run now
    if sweep is not None:
        summary["sweep"] = sweep
    summary["wall_seconds"] = round(time.time() - started, 3)
    wall = {"wall_seconds": summary["wall_seconds"]}
    if summary["mlflow"].get("pending"):
        tracking.add_pending_metrics(summary["mlflow"]["pending"], wall)
        print(
            f"dcflow: warning: MLflow logging failed ({summary['mlflow']['error']}); the run's "
            f"metrics and artifacts are kept in {summary['mlflow']['pending']}: run `dcflow sync` "
            "when the server is back",
            file=sys.stderr,
        )
    else:
        try:
            tracking.log_metrics(uri, summary["mlflow"]["run_id"], wall)
        except DcflowError as exc:  # the run itself is logged; only its wall time is missing
            print(f"dcflow: warning: wall_seconds not logged: {exc}", file=sys.stderr)
    return {
        k: summary[k]
        for k in (
            "method",
            "dataset",
            "n_samples",
            "seed",
            "metrics",
            "internal",
            "cluster_sizes",
            "heldout",
            "sweep",
            "stages",
            "wall_seconds",
            "mlflow",
            "artifacts",
            "predictions",
            "log",
        )
        if k in summary
    }


def cmd_run(args: argparse.Namespace, started: float) -> int:
    """``dcflow run``: execute, write ``--json``, print the table; the exit code."""
    from dcflow import tracking
    from dcflow.artifacts import atomic_path

    summary = execute_run(args, started)
    if args.json:
        with atomic_path(Path(args.json)) as tmp:
            tmp.write_text(json.dumps(summary, indent=2) + "\n")
    print_table(summary)
    uri = summary["mlflow"].get("tracking_uri") or tracking.resolve_tracking_uri()
    print(f"artifacts: {summary['artifacts']}\nMLflow: {tracking.ui_hint(uri)}")
    return 0
