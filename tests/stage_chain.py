"""Fit one method in this process: its declared stages, in pipeline order, then ``evaluate``.

Shared by the tests that need a finished run directory without kfp.local's one process per stage
(``predict`` on digits, the predict pipeline's fixture).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dcflow.config import build_run_config
from dcflow.methods.registry import get_method
from dcflow.stages.cluster_init import cluster_init
from dcflow.stages.confident_sample_selection import confident_sample_selection
from dcflow.stages.download_weights import download_weights
from dcflow.stages.evaluate import evaluate
from dcflow.stages.pretrain import pretrain
from dcflow.stages.refine import refine

STAGE_DIRS = ("pretrain", "init", "sel", "final", "eval")


@dataclass
class Fitted:
    """A finished run: its stage directories, the directory of its final labels, its summary."""

    dirs: dict[str, str]
    final: str
    summary: dict[str, Any]


def fit_in_process(
    name: str, dataset: dict[str, Any], run_dir: Path, store: str, tracking_uri: str
) -> Fitted:
    """Run ``name`` with its ``smoke`` budgets and one thread on ``dataset`` under ``run_dir``."""
    cls = get_method(name)
    cfg = build_run_config(name, cls.Config, dataset, overrides=[*cls.smoke, "threads=1"])
    config = cfg.to_json()
    d = {s: str(run_dir / s) for s in STAGE_DIRS}
    reports: list[dict[str, Any]] = []
    uri = sha = selection = ""
    if "pretrain" in cls.stages:
        reports.append(download_weights(config, store)["report"])
        out = pretrain(config, store, d["pretrain"])
        uri, sha = out["weights_uri"], out["weights_sha256"]
        reports.append(out["report"])
    reports.append(cluster_init(config, d["init"], uri, sha))
    if "confident-sample-selection" in cls.stages:
        reports.append(confident_sample_selection(config, d["init"], d["sel"]))
        selection = d["sel"]
    final = d["init"]
    if "refine" in cls.stages:
        reports.append(refine(config, d["init"], d["final"], selection, uri, sha))
        final = d["final"]
    summary = evaluate(
        config, d["init"], final, reports, d["eval"], tracking_uri,
        selection_dir=selection, weights_uri=uri, weights_sha256=sha,
    )  # fmt: skip
    return Fitted(d, final, summary)
