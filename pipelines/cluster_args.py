"""The per-stage cluster settings of ``compile.py``: its command-line flags and what they build.

:func:`cluster_arguments` adds the flags (requests, limits, deadlines, node selectors,
tolerations, secrets, retries, the multi-worker Trainer job) to a parser, and
:func:`settings_from_args` turns the parsed flags into the
:class:`~dcflow_pipelines.cluster.ClusterSettings` every compiled task is configured with.
"""

import argparse
from typing import Any


def _labels(items: list[str], flag: str) -> dict[str, str]:
    """``["K=V", ...]`` -> ``{K: V}``; ValueError names ``flag``."""
    labels = dict(item.partition("=")[::2] for item in items)
    if any(not k or not v for k, v in labels.items()):
        raise ValueError(f"{flag} wants KEY=VALUE")
    return labels


def settings_from_args(args: argparse.Namespace) -> Any:
    """The ``ClusterSettings`` the command line asks for (ValueError for a bad value)."""
    from dcflow_pipelines.cluster import ClusterSettings, PvcMount, Toleration

    return ClusterSettings(
        gpus=args.gpus,
        cpu=args.cpu,
        memory=args.memory,
        train_cpu=args.train_cpu,
        train_memory=args.train_memory,
        cpu_limit=args.cpu_limit,
        memory_limit=args.memory_limit,
        train_cpu_limit=args.train_cpu_limit,
        train_memory_limit=args.train_memory_limit,
        timeout=args.timeout,
        train_timeout=args.train_timeout,
        node_selector=_labels(args.node_selector, "--node-selector"),
        tolerations=tuple(Toleration.parse(t) for t in args.toleration),
        gpu_node_selector=_labels(args.gpu_node_selector, "--gpu-node-selector"),
        gpu_tolerations=tuple(Toleration.parse(t) for t in args.gpu_toleration),
        image_pull_secrets=tuple(args.image_pull_secret),
        pvcs=tuple(PvcMount.parse(p) for p in args.pvc),
        secret=args.s3_secret,
        config_map=args.config_map,
        mlflow_secret=args.mlflow_secret,
        retries=args.retries,
        caching=not args.no_cache,
        pipeline_root=args.pipeline_root,
        workers=args.workers,
        gpus_per_worker=args.gpus_per_worker,
        job_kind=args.job_kind,
        shared_pvc=PvcMount.parse(args.shared_pvc) if args.shared_pvc else None,
        trainer_runtime=args.trainer_runtime,
    )


# Repeatable options of the cluster settings: flag, metavar, help.
_REPEATABLE = (
    ("--node-selector", "K=V", "node label every stage needs"),
    (
        "--toleration",
        "KEY[=VAL][:EFFECT]",
        "taint every stage tolerates (EFFECT default NoSchedule)",
    ),
    ("--gpu-node-selector", "K=V", "node label GPU stages need too, e.g. pool=gpu"),
    ("--gpu-toleration", "KEY[=VAL][:EFFECT]", "taint GPU stages tolerate, e.g. nvidia.com/gpu"),
    ("--image-pull-secret", "NAME", "Secret with registry credentials to pull the images"),
    ("--pvc", "NAME:MOUNT_PATH", "existing PVC mounted into every stage, e.g. data:/data"),
)


def cluster_arguments(p: argparse.ArgumentParser) -> None:
    """The per-stage cluster settings (:class:`dcflow_pipelines.cluster.ClusterSettings`)."""
    g = p.add_argument_group(
        "per-stage cluster settings (training stages: the method's, e.g. pretrain and refine; "
        "light stages: the others; GPU stages: training stages when --gpus > 0)"
    )
    g.add_argument("--gpus", type=int, default=1, help="GPUs per training stage (0: none)")
    g.add_argument("--cpu", default="1", help="CPU request of light stages (default 1)")
    g.add_argument("--memory", default="2Gi", help="memory request of light stages (2Gi)")
    g.add_argument("--train-cpu", default="2", help="CPU request of training stages (2)")
    g.add_argument("--train-memory", default="4Gi", help="memory of training stages (4Gi)")
    for kind, what, example in (("cpu", "CPU", "4"), ("memory", "memory", "8Gi")):
        for prefix, stages in (("", "light"), ("train-", "training")):
            g.add_argument(
                f"--{prefix}{kind}-limit",
                default="",
                metavar="Q",
                help=f"{what} limit of {stages} stages, e.g. {example} (default none)",
            )
    for prefix, stages in (("", "light"), ("train-", "training")):
        g.add_argument(
            f"--{prefix}timeout",
            type=int,
            default=0,
            metavar="SECONDS",
            help=f"deadline of one attempt of a {stages} stage (default 0: none)",
        )
    for flag, metavar, text in _REPEATABLE:
        g.add_argument(
            flag, action="append", default=[], metavar=metavar, help=f"{text}; repeatable"
        )
    g.add_argument("--s3-secret", default="dcflow-s3", help="Secret with the S3 keys ('' none)")
    g.add_argument("--config-map", default="dcflow-config", help="ConfigMap with endpoints")
    g.add_argument(
        "--mlflow-secret",
        default="",
        metavar="NAME",
        help="Secret whose keys MLFLOW_TRACKING_USERNAME, MLFLOW_TRACKING_PASSWORD, "
        "MLFLOW_TRACKING_TOKEN, MLFLOW_TRACKING_INSECURE_TLS (each optional) "
        "become env vars of every stage (default: none)",
    )
    g.add_argument("--retries", type=int, default=2, help="retries per stage, with backoff")
    g.add_argument("--pipeline-root", default="", help="artifact root, e.g. s3://bucket/runs")
    j = p.add_argument_group(
        "multi-worker training (Kubeflow Trainer): with --workers N > 1 the pretrain stage of "
        "cc, uldc, scan, ruc, propos and hadis becomes a light task that launches a training "
        "job of N pods running torchrun, waits for it and fails with it; other stages and "
        "methods stay plain tasks"
    )
    j.add_argument("--workers", type=int, default=1, help="pods of the training job (1: none)")
    j.add_argument(
        "--gpus-per-worker", type=int, default=1, help="GPUs (= processes) per job pod (1)"
    )
    j.add_argument(
        "--job-kind",
        choices=("trainjob", "pytorchjob"),
        default="trainjob",
        help="TrainJob (Trainer v2, default) or PyTorchJob (training-operator v1)",
    )
    j.add_argument(
        "--shared-pvc",
        default="",
        metavar="NAME:MOUNT_PATH",
        help="ReadWriteMany PVC the launcher and the job pods share (config in, weights out)",
    )
    j.add_argument(
        "--trainer-runtime",
        default="torch-distributed",
        help="ClusterTrainingRuntime of a TrainJob (default torch-distributed)",
    )
