"""The ``dcflow`` argument parser: sub-commands, their options and the one-line usage errors."""

from __future__ import annotations

import argparse
from typing import NoReturn

EPILOG = """exit codes: 0 ok, 2 bad config/usage, 3 bad data, 4 bad weights, 5 service unreachable,
6 stage failure, 130 interrupted. Docs: README.md."""


class Parser(argparse.ArgumentParser):
    """argparse with usage errors as one line (``dcflow: error: ...``), exit code 2."""

    def error(self, message: str) -> NoReturn:
        """Print ``message`` as one line and exit with code 2."""
        self.exit(2, f"dcflow: error: {message} (see {self.prog} --help)\n")


def add_run_args(p: argparse.ArgumentParser) -> None:
    """The options ``run``, ``config`` and ``sweep-k`` share: method, data, config, seed."""
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


def build_parser() -> argparse.ArgumentParser:
    """The full parser of the ``dcflow`` command."""
    parser = Parser(
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
    add_run_args(run)
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
    add_run_args(cfg)
    from dcflow.compare.cli import add_parsers
    from dcflow.predict_cli import add_parser as add_predict
    from dcflow.sweep_cli import add_parser as add_sweep

    add_parsers(sub)
    add_predict(sub)
    add_sweep(sub, add_run_args)
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
