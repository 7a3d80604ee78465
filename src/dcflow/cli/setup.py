"""What a run needs before its first stage.

The config from the arguments, the services checked, the stage cache and (``--runner docker``)
the container mounts.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dcflow.errors import ConfigError, DataError


def build_config(args: argparse.Namespace) -> Any:
    """The validated run config of ``run``/``config``/``sweep-k`` arguments (data checked)."""
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


def parse_tags(items: list[str]) -> dict[str, str]:
    """``--tag KEY=VALUE`` items as a dict; a malformed one is a :class:`ConfigError`."""
    tags = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--tag expects KEY=VALUE, got {item!r}")
        tags[key.strip()] = value
    return tags


@contextlib.contextmanager
def stage_cache(resume: bool) -> Iterator[None]:
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


def docker_plan(args: argparse.Namespace, cfg: Any, store: str, uri: str) -> Any:
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


def prepare(args: argparse.Namespace, cfg: Any) -> tuple[str, str]:
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
