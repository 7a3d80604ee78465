"""Compile one KFP pipeline YAML per method, and optionally submit it to a KFP API.

Usage::

    python pipelines/compile.py --method aspc-da|all --out compiled/
        [--image IMAGE] [--cuda-image IMAGE] [--gpus N]
        [--cpu 1 --memory 2Gi --train-cpu 2 --train-memory 4Gi]
        [--cpu-limit Q --memory-limit Q --train-cpu-limit Q --train-memory-limit Q]
        [--timeout SECONDS] [--train-timeout SECONDS]
        [--node-selector K=V ...] [--toleration KEY[=VALUE][:EFFECT] ...]
        [--gpu-node-selector K=V ...] [--gpu-toleration KEY[=VALUE][:EFFECT] ...]
        [--image-pull-secret NAME ...] [--pvc NAME:MOUNT_PATH ...]
        [--s3-secret NAME] [--config-map NAME] [--mlflow-secret NAME]
        [--retries N] [--pipeline-root s3://bucket/prefix] [--no-cache]
        [--workers N --gpus-per-worker G --shared-pvc NAME:PATH
         [--job-kind trainjob|pytorchjob] [--trainer-runtime NAME]]
        [--upload] [--submit] --host URL [--experiment NAME] [--run-name NAME]
        [--namespace NS] [--param K=V ...] [auth options]
    python pipelines/compile.py --compare M1,M2|all [--datasets ..] [--seeds ..] [same options]
    python pipelines/compile.py --predict [--predict-gpu] [same options]

``--predict`` compiles ``dcflow-predict`` (``<out>/predict.yaml``), which assigns new images with
a finished run (:mod:`dcflow_pipelines.predict_pipeline`); its task is a light stage unless
``--predict-gpu``. ``--upload`` uploads every compiled pipeline (as ``dcflow-<method>``, or a new
version of it); ``--submit`` starts a run of the one compiled pipeline.

Stages run in one image, in two builds of one tag (``docker/build.sh``): ``--image`` (default
``$DCFLOW_IMAGE`` or the release tag) for every stage, and ``--cuda-image`` (default: the
``--image`` tag with ``-cuda`` appended, what ``docker/build.sh --variant cuda`` tags) for the
stages that request a GPU, which also get ``DCFLOW_REQUIRE_CUDA=1``. The compiled pipeline's
default ``config`` parameter is the method's digits preset, so it runs as is. Per-stage cluster
settings: :mod:`dcflow_pipelines.cluster` (their flags: :mod:`dcflow_pipelines.cluster_args`).
``--workers N`` (N > 1) turns the pretrain stage of the data-parallel methods into a task that
launches a Kubeflow Trainer job of N pods (:mod:`dcflow.trainjob`); the task's service account
needs the chart's ``trainer.rbac``.
"""

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml


def compile_method(
    method: str,
    out_dir: Path,
    image: str,
    gpus: int | None = None,
    settings: Any = None,
    cuda_image: str | None = None,
) -> Path:
    """Compile ``method``'s pipeline to ``out_dir/<method>.yaml`` and return the path."""
    from dcflow_pipelines.build import build

    from dcflow.config import build_run_config
    from dcflow.methods.registry import get_method

    cfg = build_run_config(method, get_method(method).Config, {"name": "digits"})
    pipeline = build(method, gpus=gpus, default_config=cfg.to_json(), settings=settings)
    return write_pipeline(pipeline, out_dir / f"{method}.yaml", image, cuda_image)


def compile_comparison(args: argparse.Namespace, settings: Any) -> Path:
    """Compile the comparison pipeline of ``--compare`` (parallel branches + report stage)."""
    from dcflow_pipelines.compare_pipeline import build_comparison, cell_configs

    from dcflow.compare.plan import Plan, parse_list, parse_seeds
    from dcflow.methods.registry import method_names

    methods = method_names() if args.compare == "all" else parse_list(args.compare, "compare")
    plan = Plan(methods, parse_list(args.datasets, "datasets"), parse_seeds(args.seeds))
    cid = args.compare_id or plan.default_id()
    cells = cell_configs(plan.methods, plan.datasets, plan.seeds, cid, args.compare_set)
    pipeline = build_comparison(cells, cid, settings=settings)
    target = Path(args.out) / f"compare-{cid}.yaml"
    return write_pipeline(pipeline, target, args.image, args.cuda_image)


def compile_predict(args: argparse.Namespace, settings: Any) -> Path:
    """Compile ``dcflow-predict`` (``--predict``) to ``<out>/predict.yaml``."""
    from dcflow_pipelines.predict_pipeline import build_predict

    pipeline = build_predict(settings, training=args.predict_gpu)
    return write_pipeline(pipeline, Path(args.out) / "predict.yaml", args.image, args.cuda_image)


def write_pipeline(pipeline: Any, target: Path, image: str, cuda_image: str | None = None) -> Path:
    """Compile ``pipeline`` to ``target`` with its executors on ``image`` / ``cuda_image``."""
    from kfp import compiler

    from dcflow.artifacts import atomic_path

    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        compiler.Compiler().compile(pipeline, str(tmp))
        docs = list(yaml.safe_load_all(tmp.read_text()))
        set_image(docs[0], image, cuda_image)
        validate(docs)
        tmp.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return target


def set_image(spec: dict[str, Any], image: str, cuda_image: str | None = None) -> None:
    """Point every executor at ``image``, and those requesting an accelerator at ``cuda_image``.

    ``cuda_image`` defaults to ``image``'s CUDA build (its tag with ``-cuda``). This is the one
    place the tags are set.
    """
    from dcflow_components._base import cuda_variant

    for executor in spec["deploymentSpec"]["executors"].values():
        container = executor["container"]
        gpu = bool(container.get("resources", {}).get("accelerator"))
        container["image"] = (cuda_image or cuda_variant(image)) if gpu else image


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


def _parser(default_image: str) -> argparse.ArgumentParser:
    from dcflow_pipelines import submit
    from dcflow_pipelines.cluster_args import cluster_arguments

    p = argparse.ArgumentParser(description="Compile dcflow's KFP pipelines to YAML.")
    p.add_argument("--method", default="all", help="method name or 'all' (default all)")
    p.add_argument("--out", default="compiled", help="output directory (default compiled/)")
    p.add_argument("--image", default=default_image, help=f"image (default {default_image})")
    p.add_argument(
        "--cuda-image",
        help="image of the stages that request a GPU (default: the --image tag + '-cuda', "
        "as docker/build.sh --variant cuda tags it)",
    )
    cluster_arguments(p)
    c = p.add_argument_group("comparison (one pipeline, a parallel branch per cell)")
    c.add_argument("--compare", metavar="METHODS", help="compile a comparison of these methods")
    c.add_argument("--datasets", default="digits", help="comparison datasets (default digits)")
    c.add_argument("--seeds", default="0", help="comparison seeds (default 0)")
    c.add_argument("--compare-id", default="", help="comparison id (default: from the grid)")
    c.add_argument("--compare-set", action="append", default=[], metavar="[METHOD:]K=V")
    d = p.add_argument_group("prediction (assign new images with a finished run)")
    d.add_argument("--predict", action="store_true", help="compile dcflow-predict (predict.yaml)")
    d.add_argument(
        "--predict-gpu",
        action="store_true",
        help="predict as a training stage: --gpus GPUs, --train-cpu/--train-memory, CUDA image",
    )
    submit.add_arguments(p)
    return p


def _check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Any:
    """Usage errors (exit 2) for a bad command line; returns the ``ClusterSettings``."""
    from dcflow_components._base import cuda_variant
    from dcflow_pipelines import submit
    from dcflow_pipelines.cluster_args import settings_from_args

    if args.gpus < 0 or args.retries < 0:
        parser.error("--gpus and --retries must be >= 0")
    if args.predict and args.compare:
        parser.error("--predict and --compare compile one pipeline each: pass one of them")
    if args.predict_gpu and not args.predict:
        parser.error("--predict-gpu applies to --predict only")
    one = args.method != "all" or args.compare or args.predict
    if args.submit and (not args.host or not one):
        parser.error("--submit needs --host URL and one --method (or --compare, or --predict)")
    if args.upload and not args.host:
        parser.error("--upload needs --host URL")
    try:
        settings = settings_from_args(args)
        submit.parse_params(args.params)
        if settings.gpus > 0 or (settings.workers > 1 and settings.gpus_per_worker > 0):
            args.cuda_image = args.cuda_image or cuda_variant(args.image)
        job_image = args.cuda_image if settings.gpus_per_worker > 0 else args.image
        settings = replace(settings, job_image=job_image or args.image)
    except ValueError as exc:
        parser.error(str(exc))
    return settings


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    from dcflow_components._base import IMAGE
    from dcflow_pipelines import submit

    from dcflow.errors import DcflowError
    from dcflow.methods.registry import method_names

    parser = _parser(IMAGE)
    args = parser.parse_args(argv)
    settings = _check_args(parser, args)
    try:
        names = method_names() if args.method == "all" else [args.method]
        paths = []
        if args.compare:
            names = []
            paths.append(path := compile_comparison(args, settings))
            print(f"compiled comparison -> {path}")
        if args.predict:
            names = []
            paths.append(path := compile_predict(args, settings))
            print(f"compiled predict -> {path}")
        for name in names:
            path = compile_method(name, Path(args.out), args.image, None, settings, args.cuda_image)
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
