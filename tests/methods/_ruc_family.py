"""Shared helpers of the SCAN / RUC method tests: tiny settings and a hook-level chain runner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from dcflow import artifacts as art
from dcflow.config import RunConfig, build_run_config
from dcflow.data import Dataset, load_dataset
from dcflow.methods.base import Method, StageContext
from dcflow.registry import get_method
from dcflow.stages.common import seed_everything, without_labels

TINY = [
    "simclr.epochs=20",
    "simclr.batch_size=64",
    "scan.epochs=20",
    "scan.batch_size=64",
    "scan.heads=2",
    "selflabel.epochs=2",
]
# A 300-image SCAN is far less confident than the full one: a lower tau1 keeps the clean set large
# enough that three RUC epochs do not collapse onto one cluster.
RUC_TINY = ["ruc.epochs=3", "ruc.batch_size=64", "ruc.tau2_every=1", "selection.tau1=0.5"]
DIGITS = {"name": "digits", "limit": 300}


def config(method: str, extra: list[str] | tuple[str, ...] = (), dataset: Any = None) -> RunConfig:
    """Run config from the digits preset with tiny epochs plus ``extra`` overrides."""
    cls = get_method(method)
    over = [*TINY, *(RUC_TINY if method == "ruc" else []), *extra]
    return build_run_config(
        method,
        cls.Config,
        dataset or DIGITS,
        config_file=str(preset(method)),
        overrides=over,
        use_preset=False,
    )


def preset(method: str, dataset: str = "digits") -> Path:
    """The repository preset ``configs/<method>/<dataset>.yaml`` (tests isolate the preset dir)."""
    return Path(__file__).resolve().parents[2] / "configs" / method / f"{dataset}.yaml"


def cli_args(method: str) -> list[str]:
    """``dcflow run`` arguments: digits preset, 300-image subset, tiny epochs."""
    args = ["run", method, "--config", str(preset(method)), "--quiet"]
    for item in ["dataset.limit=300", "threads=1", *TINY, *(RUC_TINY if method == "ruc" else [])]:
        args += ["--set", item]
    return args


def ctx(data: Dataset, root: Path, stage: str, seed: int = 0, **kw: Any) -> StageContext:
    """Context of ``stage`` writing into ``root/stage`` and reading every other stage dir."""
    out = root / stage
    out.mkdir(parents=True, exist_ok=True)
    inputs = {s: root / s for s in ("cluster-init", "confident-sample-selection")}
    return StageContext(
        data=data, inputs=inputs, out=out, device=torch.device("cpu"), seed=seed, **kw
    )


def run_chain(cfg: RunConfig, root: Path, seed: int = 0) -> tuple[Method, Dataset, dict]:
    """All hooks of the method in order, as the pipeline runs them (fresh seeding per stage)."""
    method = get_method(cfg.method)(cfg)
    data = load_dataset(cfg.dataset)
    blind = without_labels(data)
    metrics: dict[str, dict[str, float]] = {}
    hooks = {
        "pretrain": method.pretrain,
        "cluster-init": method.cluster_init,
        "confident-sample-selection": method.select,
        "refine": method.refine,
    }
    weights = root / "pretrain" / art.WEIGHTS
    for stage in method.stages:
        if stage in hooks:
            seed_everything(seed, 1)
            metrics[stage] = hooks[stage](ctx(blind, root, stage, seed, weights=weights))
    return method, data, metrics
