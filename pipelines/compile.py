"""Compile one KFP pipeline YAML per method, and optionally submit it to a KFP API.

Usage::

    python pipelines/compile.py --method aspc-da|all --out compiled/ [--image IMAGE] [--gpus N]
        [--cpu 1 --memory 2Gi --train-cpu 2 --train-memory 4Gi] [--node-selector K=V ...]
        [--toleration KEY[=VALUE][:EFFECT] ...] [--s3-secret NAME] [--config-map NAME]
        [--retries N] [--pipeline-root s3://bucket/prefix]
        [--upload] [--submit] --host URL [--experiment NAME] [--run-name NAME]
        [--namespace NS] [--param K=V ...] [auth options]

``--upload`` uploads every compiled pipeline (as ``dcflow-<method>``, or a new version of it);
``--submit`` starts a run of the one compiled pipeline.

Every stage runs in the same image (``--image``, default ``$DCFLOW_IMAGE`` or the release tag):
the one place the tag is set. The compiled pipeline's default ``config`` parameter is the method's
digits preset, so it runs as is. Per-stage cluster settings: :mod:`dcflow_pipelines.cluster`.
"""

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import yaml


def compile_method(
    method: str, out_dir: Path, image: str, gpus: int | None = None, settings: Any = None
) -> Path:
    """Compile ``method``'s pipeline to ``out_dir/<method>.yaml`` and return the path."""
    from dcflow_pipelines.build import build

    from dcflow.config import build_run_config
    from dcflow.registry import get_method

    cfg = build_run_config(method, get_method(method).Config, {"name": "digits"})
    pipeline = build(method, gpus=gpus, default_config=cfg.to_json(), settings=settings)
    return write_pipeline(pipeline, out_dir / f"{method}.yaml", image)


def compile_comparison(args: argparse.Namespace, settings: Any) -> Path:
    """Compile the comparison pipeline of ``--compare`` (parallel branches + report stage)."""
    from dcflow_pipelines.compare_pipeline import build_comparison, cell_configs

    from dcflow.compare.plan import Plan, parse_list, parse_seeds
    from dcflow.registry import method_names

    methods = method_names() if args.compare == "all" else parse_list(args.compare, "compare")
    plan = Plan(methods, parse_list(args.datasets, "datasets"), parse_seeds(args.seeds))
    cid = args.compare_id or plan.default_id()
    cells = cell_configs(plan.methods, plan.datasets, plan.seeds, cid, args.compare_set)
    pipeline = build_comparison(cells, cid, settings=settings)
    return write_pipeline(pipeline, Path(args.out) / f"compare-{cid}.yaml", args.image)


def write_pipeline(pipeline: Any, target: Path, image: str) -> Path:
    """Compile ``pipeline`` to ``target`` with every executor on ``image``, validated."""
    from kfp import compiler

    from dcflow.artifacts import atomic_path

    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        compiler.Compiler().compile(pipeline, str(tmp))
        docs = list(yaml.safe_load_all(tmp.read_text()))
        set_image(docs[0], image)
        validate(docs)
        tmp.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return target


def set_image(spec: dict[str, Any], image: str) -> None:
    """Point every executor of a compiled pipeline at ``image`` (the one place the tag is set)."""
    for executor in spec["deploymentSpec"]["executors"].values():
        executor["container"]["image"] = image


def validate(docs: dict[str, Any] | list[dict[str, Any]]) -> None:
    """Reject unknown or mistyped fields by parsing into the KFP protos.

    The first document is the ``PipelineSpec``; a second one (kfp-kubernetes settings) is the
    ``PlatformSpec``, whose Kubernetes part must parse as a ``KubernetesExecutorConfig``.
    """
    from google.protobuf import json_format
    from kfp.kubernetes import kubernetes_executor_config_pb2 as k8s_pb2
    from kfp.pipeline_spec import pipeline_spec_pb2

    docs = [docs] if isinstance(docs, dict) else docs
    json_format.ParseDict(docs[0], pipeline_spec_pb2.PipelineSpec())
    for platform in docs[1:]:
        json_format.ParseDict(platform, pipeline_spec_pb2.PlatformSpec())
        executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
        for config in executors.values():
            json_format.ParseDict(config, k8s_pb2.KubernetesExecutorConfig())


def settings_from_args(args: argparse.Namespace) -> Any:
    """The ``ClusterSettings`` the command line asks for."""
    from dcflow_pipelines.cluster import ClusterSettings, Toleration

    selector = dict(item.partition("=")[::2] for item in args.node_selector)
    if any(not k or not v for k, v in selector.items()):
        raise ValueError("--node-selector wants KEY=VALUE")
    return ClusterSettings(
        gpus=args.gpus,
        cpu=args.cpu,
        memory=args.memory,
        train_cpu=args.train_cpu,
        train_memory=args.train_memory,
        node_selector=selector,
        tolerations=tuple(Toleration.parse(t) for t in args.toleration),
        secret=args.s3_secret,
        config_map=args.config_map,
        retries=args.retries,
        pipeline_root=args.pipeline_root,
    )


def _parser(default_image: str) -> argparse.ArgumentParser:
    from dcflow_pipelines import submit

    p = argparse.ArgumentParser(description="Compile dcflow's KFP pipelines to YAML.")
    p.add_argument("--method", default="all", help="method name or 'all' (default all)")
    p.add_argument("--out", default="compiled", help="output directory (default compiled/)")
    p.add_argument("--image", default=default_image, help=f"image (default {default_image})")
    g = p.add_argument_group("per-stage cluster settings")
    g.add_argument("--gpus", type=int, default=1, help="GPUs per training stage (0: none)")
    g.add_argument("--cpu", default="1", help="CPU request of light stages (default 1)")
    g.add_argument("--memory", default="2Gi", help="memory request of light stages (2Gi)")
    g.add_argument("--train-cpu", default="2", help="CPU request of training stages (2)")
    g.add_argument("--train-memory", default="4Gi", help="memory of training stages (4Gi)")
    g.add_argument("--node-selector", action="append", default=[], metavar="K=V")
    g.add_argument("--toleration", action="append", default=[], metavar="KEY[=VAL][:EFFECT]")
    g.add_argument("--s3-secret", default="dcflow-s3", help="Secret with the S3 keys ('' none)")
    g.add_argument("--config-map", default="dcflow-config", help="ConfigMap with endpoints")
    g.add_argument("--retries", type=int, default=2, help="retries per stage, with backoff")
    g.add_argument("--pipeline-root", default="", help="artifact root, e.g. s3://bucket/runs")
    c = p.add_argument_group("comparison (one pipeline, a parallel branch per cell)")
    c.add_argument("--compare", metavar="METHODS", help="compile a comparison of these methods")
    c.add_argument("--datasets", default="digits", help="comparison datasets (default digits)")
    c.add_argument("--seeds", default="0", help="comparison seeds (default 0)")
    c.add_argument("--compare-id", default="", help="comparison id (default: from the grid)")
    c.add_argument("--compare-set", action="append", default=[], metavar="[METHOD:]K=V")
    submit.add_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    from dcflow_components._base import IMAGE
    from dcflow_pipelines import submit

    from dcflow.errors import DcflowError
    from dcflow.registry import method_names

    parser = _parser(IMAGE)
    args = parser.parse_args(argv)
    if args.gpus < 0 or args.retries < 0:
        parser.error("--gpus and --retries must be >= 0")
    if args.submit and (not args.host or (args.method == "all" and not args.compare)):
        parser.error("--submit needs --host URL and one --method (or --compare)")
    if args.upload and not args.host:
        parser.error("--upload needs --host URL")
    try:
        settings = settings_from_args(args)
        submit.parse_params(args.params)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        names = method_names() if args.method == "all" else [args.method]
        paths = []
        if args.compare:
            names = []
            paths.append(path := compile_comparison(args, settings))
            print(f"compiled comparison -> {path}")
        for name in names:
            path = compile_method(name, Path(args.out), args.image, settings=settings)
            paths.append(path)
            print(f"compiled {name} -> {path}")
        if args.upload:
            version = time.strftime("%Y%m%d-%H%M%S")
            print("\n".join(submit.upload(paths, args, version)))
        if args.submit:
            run_id, exp_id = submit.submit(path, args)
            print(f"submitted {path.stem} to {args.host}: run {run_id} (experiment {exp_id})")
    except DcflowError as exc:
        print(f"compile: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
