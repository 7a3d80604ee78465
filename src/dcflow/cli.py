"""``dcflow`` command line: run a method's pipeline locally, list methods and datasets.

Errors a user can cause print one line (``dcflow: error: ...``) on stderr and exit with the code of
their class (see :mod:`dcflow.errors`): 2 config, 3 data, 4 weights, 5 service, 6 stage.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

from dcflow.errors import ConfigError, DataError, DcflowError

EPILOG = """exit codes: 0 ok, 2 bad config/usage, 3 bad data, 4 bad weights, 5 service unreachable,
6 stage failure, 130 interrupted. Docs: README.md."""


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors as one line (``dcflow: error: ...``), exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"dcflow: error: {message} (see {self.prog} --help)\n")


def _add_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("method", help="method name (see `dcflow methods`)")
    p.add_argument(
        "--dataset",
        default="digits",
        help="dataset name (see `dcflow datasets`), npz:PATH, s3://bucket/key.npz, "
        "folder:DIR (your images; --set dataset.n_clusters=K) or csv:FILE (path[,label] columns) "
        "(default: digits)",
    )
    p.add_argument("--data-dir", help="directory holding <dataset>.npz (e.g. ../shared/data)")
    p.add_argument(
        "--split",
        choices=["all", "train", "test"],
        default=None,
        help="cluster train+test pooled (all, default) or one split",
    )
    p.add_argument(
        "--eval-split",
        choices=["train", "test"],
        default=None,
        help="held-out protocol: after fitting on --split, assign this other split with the "
        "method's predict and report its metrics apart (heldout)",
    )
    p.add_argument(
        "--config", metavar="FILE", help="YAML file of overrides (same format as presets)"
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one setting, e.g. --set pretrain.epochs=20 (repeatable)",
    )
    p.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    p.add_argument(
        "--nproc",
        type=int,
        default=None,
        metavar="N",
        help="train data-parallel in N processes on this machine (torchrun; gloo on CPU, one GPU "
        "each on CUDA); the preset's batch size is the global batch (default 1)",
    )
    p.add_argument(
        "--no-preset", action="store_true", help="ignore configs/<method>/<dataset>.yaml"
    )


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="dcflow",
        description="Robust deep clustering methods as Kubeflow pipelines.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    run = sub.add_parser(
        "run",
        help="run a method's pipeline locally (kfp.local, one process per stage)",
        description="Compile METHOD's KFP pipeline and execute it with kfp.local: each stage runs "
        "in "
        "its own process; artifacts go to --artifacts, metrics and plots to MLflow.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_run_args(run)
    run.add_argument(
        "--artifacts",
        metavar="DIR|s3://B/P",
        default=".dcflow/runs",
        help="where stage artifacts go (default .dcflow/runs); s3:// uploads after the run",
    )
    run.add_argument(
        "--weights-store",
        metavar="URI",
        default=None,
        help="pretrained-weights cache: directory or s3://bucket/prefix "
        "(default $DCFLOW_WEIGHTS_STORE or .dcflow/weights)",
    )
    run.add_argument(
        "--experiment", default="dcflow", help="MLflow experiment name (default dcflow)"
    )
    run.add_argument(
        "--tag",
        dest="tags",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra MLflow tag on the run, e.g. --tag team=vision (repeatable)",
    )
    run.add_argument(
        "--resume",
        action="store_true",
        help="reuse stages an earlier (killed or finished) run completed with the same inputs "
        "(checked by content hash); recompute the rest",
    )
    run.add_argument(
        "--runner",
        choices=["subprocess", "docker"],
        default="subprocess",
        help="subprocess: each stage a process of this Python (default); docker: each stage a "
        "container of the dcflow image (host network, non-root), as on a cluster",
    )
    run.add_argument(
        "--image",
        metavar="TAG",
        default=None,
        help="image of --runner docker (default $DCFLOW_IMAGE or the tag docker/build.sh builds)",
    )
    run.add_argument("--json", metavar="FILE", help="write the run summary as JSON")
    run.add_argument("--quiet", action="store_true", help="print only the final table")
    cfg = sub.add_parser("config", help="print the effective config of a run without running it")
    _add_run_args(cfg)
    from dcflow.compare.cli import add_parsers
    from dcflow.predict_cli import add_parser as add_predict
    from dcflow.sweep_cli import add_parser as add_sweep

    add_parsers(sub)
    add_predict(sub)
    add_sweep(sub, _add_run_args)
    sync = sub.add_parser(
        "sync",
        help="log runs that MLflow could not take (server down mid-run) now",
        description="Log every run kept in .dcflow/mlflow-pending because MLflow failed at the "
        "end of the run; each goes to the tracking URI it was meant for unless --tracking-uri.",
    )
    sync.add_argument("--tracking-uri", default="", help="log to this MLflow instead")
    sub.add_parser("methods", help="list the registered methods and their stages")
    sub.add_parser("datasets", help="list the built-in datasets")
    return parser


def _build_config(args: argparse.Namespace) -> Any:
    from dcflow.config import build_run_config
    from dcflow.data.images import absolute_source, is_image_source, pin_source
    from dcflow.data.registry import get_dataset_loader
    from dcflow.data.remote import fetch_npz, is_remote
    from dcflow.methods.registry import get_method

    dataset: dict[str, Any] = {"name": args.dataset}
    if args.data_dir:
        dataset["data_dir"] = str(Path(args.data_dir).expanduser().resolve())
    if args.split:
        dataset["split"] = args.split
    if args.eval_split:
        dataset["eval_split"] = args.eval_split
    if is_remote(args.dataset):
        dataset["name"] = args.dataset.removeprefix("npz:")
        dataset["sha256"] = fetch_npz(dataset["name"], None)[1]  # every stage checks this
    elif is_image_source(args.dataset):
        dataset["name"] = absolute_source(args.dataset)
        if pinned := pin_source(dataset["name"]):  # a bucket's listing: every stage checks it
            dataset["sha256"] = pinned
    elif args.dataset.startswith("npz:"):
        path = Path(args.dataset[4:]).expanduser().resolve()
        if not path.is_file():
            raise DataError(f"data file not found: {path}")
        dataset["name"] = f"npz:{path}"
    else:
        get_dataset_loader(args.dataset)  # unknown names fail here, before any stage starts
    method = get_method(args.method)
    overrides = list(args.overrides)
    if getattr(args, "nproc", None) is not None:
        overrides.append(f"nproc={args.nproc}")
    cfg = build_run_config(
        args.method,
        method.Config,
        dataset,
        args.config,
        overrides,
        args.seed,
        use_preset=not args.no_preset,
    )
    if cfg.nproc > 1 and "pretrain" not in method.data_parallel:
        from dcflow.stages.launch import data_parallel_methods

        raise ConfigError(
            f"{args.method} does not train data-parallel; --nproc applies to: "
            f"{data_parallel_methods()}"
        )
    return cfg


def _parse_tags(items: list[str]) -> dict[str, str]:
    tags = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--tag expects KEY=VALUE, got {item!r}")
        tags[key.strip()] = value
    return tags


def _cmd_sync(args: argparse.Namespace) -> int:
    from dcflow import tracking
    from dcflow.errors import ServiceError

    logged, left = tracking.flush_pending(args.tracking_uri)
    print(f"logged {len(logged)} pending run(s) to MLflow; {len(left)} still pending")
    if left:
        raise ServiceError(f"{len(left)} run(s) still pending, e.g. {left[0]}")
    return 0


def _cmd_methods() -> int:
    from dcflow.methods.registry import get_method, method_names

    for name in method_names():
        cls = get_method(name)
        print(f"{name:12s} {cls.paper}\n{'':12s} stages: {' -> '.join(cls.stages)}")
    return 0


def _cmd_datasets() -> int:
    from dcflow.data.registry import dataset_descriptions

    for name, desc in dataset_descriptions().items():
        print(f"{name:14s} {desc}")
    print(f"{'npz:PATH':14s} your own data: x uint8 [N,H,W] or [N,H,W,C], optional y and n_train")
    print(f"{'folder:DIR':14s} your own images (png, jpg, bmp, tif, webp), searched recursively")
    print(f"{'csv:FILE':14s} a file list: a path column (relative to the file), optional label")
    return 0


def _cmd_config(args: argparse.Namespace) -> int:
    import yaml

    print(yaml.safe_dump(json.loads(_build_config(args).to_json()), sort_keys=False), end="")
    return 0


def _print_table(summary: dict[str, Any]) -> None:
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


@contextlib.contextmanager
def _stage_cache(resume: bool) -> Iterator[None]:
    """Point the stage processes at the stage cache (always filled; read with ``--resume``)."""
    from dcflow.stages import resume as cache

    keys = (cache.CACHE_ENV, cache.RESUME_ENV, "DCFLOW_CACHE_DIR")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.setdefault(cache.CACHE_ENV, str(Path(".dcflow/stages").resolve()))
    # decoded folder:/csv: images, shared by every stage process of the run (and later runs)
    os.environ.setdefault("DCFLOW_CACHE_DIR", str(Path(".dcflow/cache").resolve()))
    os.environ[cache.RESUME_ENV] = "1" if resume else "0"
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _docker_plan(args: argparse.Namespace, cfg: Any, store: str, uri: str) -> Any:
    """What ``--runner docker`` mounts and passes: every local path a stage reads or writes."""
    from dcflow_pipelines.docker_runner import DockerPlan, passthrough_env

    from dcflow import tracking
    from dcflow.data.images import cache_dir as images_cache
    from dcflow.stages import resume

    plan = DockerPlan(args.image)
    plan.add_writable(tracking.pending_dir())
    plan.env[tracking.PENDING_ENV] = str(tracking.pending_dir())
    cache = resume.cache_dir()
    if cache is not None:
        plan.add_writable(cache.resolve())
    if "://" not in store:
        plan.add_writable(store)
    if uri.startswith("sqlite:///"):
        plan.add_writable(Path(uri[len("sqlite:///") :]).parent)
    if cfg.dataset.data_dir:
        plan.add_readable(cfg.dataset.data_dir)
    if cfg.dataset.name.startswith("npz:"):
        plan.add_readable(cfg.dataset.name[4:])
    if cfg.dataset.name.startswith(("folder:", "csv:")):
        source = Path(cfg.dataset.name.partition(":")[2])
        plan.add_readable(source if source.is_dir() else source.parent)
        plan.add_writable(images_cache())
    passthrough_env(plan)
    return plan


def default_image() -> str:
    """The tag ``docker/build.sh`` builds by default: ``ghcr.io/dcflow/dcflow:<version>``."""
    from importlib.metadata import version

    return f"ghcr.io/dcflow/dcflow:{version('dcflow')}"


def _prepare(args: argparse.Namespace, cfg: Any) -> tuple[str, str]:
    """Check the services a run needs before any stage starts; return (weights store, URI)."""
    from dcflow import tracking
    from dcflow.stages.common import default_weights_store
    from dcflow.storage import check_s3_writable

    uri = tracking.resolve_tracking_uri()
    tracking.check_reachable(uri)
    store = args.weights_store or default_weights_store()
    if "://" not in store:
        store = str(Path(store).expanduser().resolve())
    if store.startswith("s3://"):
        check_s3_writable(store, "weights store")
    return store, uri


def _resolve_auto_k(
    args: argparse.Namespace, cfg: Any, store: str, uri: str
) -> tuple[Any, dict[str, Any]]:
    """``dataset.n_clusters=auto``: sweep ``dataset.k_range`` first; the config with that K."""
    from dcflow_pipelines.local import run_sweep_local

    from dcflow.clustering.choose_k import DEFAULT_CRITERION, parse_k_range
    from dcflow.sweep_cli import run_sweep

    ks = parse_k_range(cfg.dataset.k_range)
    root = Path(".dcflow/runs") if args.artifacts.startswith("s3://") else Path(args.artifacts)
    with _stage_cache(args.resume):
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
    cfg = _build_config(args)
    cfg = cfg.model_copy(update={"tags": {**cfg.tags, **_parse_tags(args.tags)}})
    if args.runner == "docker":  # before anything is written: dockerd answers, the image exists
        from dcflow_pipelines.docker_runner import check_image

        args.image = args.image or os.environ.get("DCFLOW_IMAGE") or default_image()
        check_image(args.image)
    store, uri = _prepare(args, cfg)
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
    with _stage_cache(args.resume):
        plan = _docker_plan(args, cfg, store, uri) if args.runner == "docker" else None
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


def _cmd_run(args: argparse.Namespace, started: float) -> int:
    from dcflow import tracking
    from dcflow.artifacts import atomic_path

    summary = execute_run(args, started)
    if args.json:
        with atomic_path(Path(args.json)) as tmp:
            tmp.write_text(json.dumps(summary, indent=2) + "\n")
    _print_table(summary)
    uri = summary["mlflow"].get("tracking_uri") or tracking.resolve_tracking_uri()
    print(f"artifacts: {summary['artifacts']}\nMLflow: {tracking.ui_hint(uri)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``dcflow`` command."""
    started = time.time()
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # usage errors (one line, code 2) and --help (0)
        return exc.code if isinstance(exc.code, int) else 0
    try:
        if args.command == "methods":
            return _cmd_methods()
        if args.command == "datasets":
            return _cmd_datasets()
        if args.command == "config":
            return _cmd_config(args)
        if args.command == "sync":
            return _cmd_sync(args)
        if args.command == "run":
            return _cmd_run(args, started)
        if args.command == "sweep-k":
            from dcflow_pipelines.local import run_sweep_local

            from dcflow.sweep_cli import cmd_sweep

            with _stage_cache(False):
                return cmd_sweep(
                    args, _build_config, lambda cfg: _prepare(args, cfg), run_sweep_local
                )
        if args.command == "predict":
            from dcflow.predict_cli import cmd_predict

            return cmd_predict(args)
        if args.command in ("compare", "report"):
            from dcflow.compare.cli import dispatch

            return dispatch(args)
        raise ConfigError(f"unknown command {args.command}")
    except DcflowError as exc:
        print(f"dcflow: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("dcflow: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
