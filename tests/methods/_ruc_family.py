"""Shared helpers of the SCAN / RUC method tests: tiny settings and a hook-level chain runner."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dcflow import artifacts as art
from dcflow.config import RunConfig, build_run_config
from dcflow.data import Dataset, load_dataset
from dcflow.handoff import ClusterInitOut, PredictOut, RefineOut, SelectionOut
from dcflow.methods.base import Method, StageContext
from dcflow.methods.registry import get_method
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


def ctx(data: Dataset, seed: int = 0, **kw: Any) -> StageContext:
    """A CPU stage context over ``data`` (``weights=`` and ``curves=`` pass through)."""
    return StageContext(data=data, device=torch.device("cpu"), seed=seed, **kw)


def run_chain(cfg: RunConfig, root: Path, seed: int = 0) -> tuple[Method, Dataset, dict[str, Any]]:
    """All hooks of the method in order, as the stage files run them.

    Each stage is freshly seeded; its typed output is saved into ``root/<stage>`` and the next
    hooks get what the stage files would load back from there.

    Returns:
        The method, the dataset (with labels) and the typed output of every stage that ran.
    """
    method = get_method(cfg.method)(cfg)
    data = load_dataset(cfg.dataset)
    blind = without_labels(data)
    weights = root / "pretrain" / art.WEIGHTS
    outs: dict[str, Any] = {}
    init: ClusterInitOut | None = None
    selection: SelectionOut | None = None
    for stage in method.stages:
        seed_everything(seed, 1)
        c = ctx(blind, seed, weights=weights)
        if stage == "pretrain":
            out: Any = method.pretrain(c)
        elif stage == "cluster-init":
            out = method.cluster_init(c)
        elif stage == "confident-sample-selection":
            assert init is not None
            out = method.select(c, init)
        elif stage == "refine":
            assert init is not None
            out = method.refine(c, init, selection)
        else:
            continue
        out.save(root / stage)
        outs[stage] = out
        if stage == "cluster-init":
            init = ClusterInitOut.load(root / stage)
        elif stage == "confident-sample-selection":
            selection = SelectionOut.load(root / stage)
    return method, data, outs


def predict_rows(
    cfg: RunConfig, root: Path, rows: np.ndarray | None = None, n_clusters: int = 0
) -> PredictOut:
    """The method's predict hook on ``rows`` of the config's dataset, from the chain in ``root``.

    ``n_clusters`` replaces the new data's K (0: keep), as new data may not know the run's K.
    """
    data = without_labels(load_dataset(cfg.dataset))
    if rows is not None:
        data = replace(data, x=np.ascontiguousarray(data.x[rows]), index=data.index[rows])
    if n_clusters:
        data = replace(data, n_clusters=n_clusters)
    method = get_method(cfg.method)(cfg)
    init = ClusterInitOut.load(root / "cluster-init")
    return method.predict(ctx(data), init, RefineOut.load(root / "refine"))
