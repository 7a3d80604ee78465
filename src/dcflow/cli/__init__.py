"""``dcflow`` command line: run a method's pipeline locally, list methods and datasets.

Errors a user can cause print one line (``dcflow: error: ...``) on stderr and exit with the code of
their class (see :mod:`dcflow.errors`): 2 config, 3 data, 4 weights, 5 service, 6 stage.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from dcflow.cli.parser import build_parser as _parser
from dcflow.cli.run import cmd_run, execute_run
from dcflow.cli.setup import build_config, prepare, stage_cache
from dcflow.errors import ConfigError, DcflowError

__all__ = ["_parser", "execute_run", "main"]


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

    print(yaml.safe_dump(json.loads(build_config(args).to_json()), sort_keys=False), end="")
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
            return cmd_run(args, started)
        if args.command == "sweep-k":
            from dcflow_pipelines.local import run_sweep_local

            from dcflow.sweep_cli import cmd_sweep

            with stage_cache(False):
                return cmd_sweep(
                    args, build_config, lambda cfg: prepare(args, cfg), run_sweep_local
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
