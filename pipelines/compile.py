"""Compile one KFP pipeline YAML per method.

Usage::

    python pipelines/compile.py --method aspc-da|all --out compiled/ [--image IMAGE] [--gpus N]

Every stage runs in the same image (``--image``, default ``$DCFLOW_IMAGE`` or the release tag);
training stages request ``nvidia.com/gpu`` (``--gpus 0`` removes the request). The compiled
pipeline's default ``config`` parameter is the method's digits preset, so it runs as is.
"""

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml


def compile_method(method: str, out_dir: Path, image: str, gpus: int) -> Path:
    """Compile ``method``'s pipeline to ``out_dir/<method>.yaml`` and return the path."""
    from dcflow_pipelines.build import build
    from kfp import compiler

    from dcflow.artifacts import atomic_path
    from dcflow.config import build_run_config
    from dcflow.registry import get_method

    cfg = build_run_config(method, get_method(method).Config, {"name": "digits"})
    pipeline = build(method, gpus=gpus, default_config=cfg.to_json())
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{method}.yaml"
    with atomic_path(target) as tmp:
        compiler.Compiler().compile(pipeline, str(tmp))
        docs = list(yaml.safe_load_all(tmp.read_text()))
        set_image(docs[0], image)
        validate(docs[0])
        tmp.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return target


def set_image(spec: dict[str, Any], image: str) -> None:
    """Point every executor of a compiled pipeline at ``image`` (the one place the tag is set)."""
    for executor in spec["deploymentSpec"]["executors"].values():
        executor["container"]["image"] = image


def validate(spec: dict[str, Any]) -> None:
    """Reject unknown or mistyped fields by parsing into the PipelineSpec proto."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    from dcflow_components._base import IMAGE

    from dcflow.errors import DcflowError
    from dcflow.registry import method_names

    parser = argparse.ArgumentParser(description="Compile dcflow's KFP pipelines to YAML.")
    parser.add_argument("--method", default="all", help="method name or 'all' (default all)")
    parser.add_argument("--out", default="compiled", help="output directory (default compiled/)")
    parser.add_argument("--image", default=IMAGE, help=f"container image (default {IMAGE})")
    parser.add_argument(
        "--gpus",
        type=int,
        default=1,
        help="GPUs per training stage (default 1; 0 removes the request)",
    )
    args = parser.parse_args(argv)
    if args.gpus < 0:
        parser.error("--gpus must be >= 0")
    try:
        names = method_names() if args.method == "all" else [args.method]
        for name in names:
            path = compile_method(name, Path(args.out), args.image, args.gpus)
            print(f"compiled {name} -> {path}")
    except DcflowError as exc:
        print(f"compile: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
