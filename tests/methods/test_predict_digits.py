"""Issue 20's predict line: on digits, every method's ``predict`` reproduces its own fit.

Each method is fitted on digits' train split (1,438 images) with its ``smoke`` budgets, the stage
files running in this process in pipeline order; then ``predict_arrays`` assigns the same split
again from the run directory alone (the sha256-checked weights and the saved read-out). The
assignments must agree on at least 99 % of the images.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dcflow.config import build_run_config
from dcflow.handoff import ClusterInitOut, RefineOut
from dcflow.methods.registry import get_method, method_names
from dcflow.stages.cluster_init import cluster_init
from dcflow.stages.confident_sample_selection import confident_sample_selection
from dcflow.stages.download_weights import download_weights
from dcflow.stages.evaluate import evaluate
from dcflow.stages.predict import find_run, predict_arrays
from dcflow.stages.pretrain import pretrain
from dcflow.stages.refine import refine

pytestmark = [pytest.mark.usefixtures("isolated_env"), pytest.mark.slow]
METHODS = [m for m in method_names() if not m.startswith("toy-")]
TRAIN = {"name": "digits", "split": "train"}


def _fit(name: str, tmp_path: Path) -> tuple[str, np.ndarray]:
    """Run every declared stage of ``name`` on digits' train split; (eval dir, fitted labels)."""
    cls = get_method(name)
    cfg = build_run_config(name, cls.Config, TRAIN, overrides=[*cls.smoke, "threads=1"])
    config = cfg.to_json()
    d = {s: str(tmp_path / s) for s in ("pretrain", "init", "sel", "final", "eval")}
    store = str(tmp_path / "store")
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
    evaluate(
        config, d["init"], final, reports, d["eval"], f"sqlite:///{tmp_path}/m.db",
        selection_dir=selection, weights_uri=uri, weights_sha256=sha,
    )  # fmt: skip
    labels = (RefineOut.load(final) if final != d["init"] else ClusterInitOut.load(final)).labels
    return d["eval"], np.asarray(labels)


@pytest.mark.parametrize("name", METHODS)
def test_predict_on_the_fit_split_reproduces_the_run(name: str, tmp_path: Path) -> None:
    eval_dir, fitted = _fit(name, tmp_path)
    assert fitted.shape == (1438,)  # digits' fixed train split: index % 5 != 4
    root, record = find_run(eval_dir)
    again = predict_arrays(root, record, TRAIN, tmp_path / "predict")
    agreement = float((np.asarray(again.labels) == fitted).mean())
    assert agreement >= 0.99, f"{name}: predict agrees with the fit on {agreement:.4f}"
    if again.proba is not None:
        proba = np.asarray(again.proba)
        assert proba.shape == (1438, 10)
        np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-4)
