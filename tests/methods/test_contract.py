"""Every registered method, every declared stage, on ``fake``: the typed hand-offs hold.

Parametrized over the registry, so a new method is covered by adding it: its ``smoke`` overrides
make the stages run in seconds. The stage files run in this process, in pipeline order, and a spy
checks that no hook ever sees the labels.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dcflow.config import build_run_config
from dcflow.handoff import ClusterInitOut, RefineOut, SelectionOut
from dcflow.methods.registry import get_method, method_names
from dcflow.stages.cluster_init import cluster_init
from dcflow.stages.confident_sample_selection import confident_sample_selection
from dcflow.stages.download_weights import download_weights
from dcflow.stages.evaluate import evaluate
from dcflow.stages.predict import find_run, predict_arrays
from dcflow.stages.pretrain import pretrain
from dcflow.stages.refine import refine

pytestmark = pytest.mark.usefixtures("isolated_env")
METHODS = [m for m in method_names() if not m.startswith("toy-")]
HOOKS = ("pretrain", "cluster_init", "select", "refine")


def _spy_on_labels(cls: type, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    seen: list[Any] = []
    for name in HOOKS:
        original = getattr(cls, name)

        def wrapped(self: Any, ctx: Any, *args: Any, _original: Any = original) -> Any:
            seen.append(ctx.data.y)
            return _original(self, ctx, *args)

        monkeypatch.setattr(cls, name, wrapped)
    return seen


@pytest.mark.parametrize("name", METHODS)
def test_every_stage_hands_off_its_typed_output(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cls = get_method(name)
    cfg = build_run_config(name, cls.Config, {"name": "fake"}, overrides=list(cls.smoke))
    config = cfg.to_json()
    seen = _spy_on_labels(cls, monkeypatch)
    d = {s: str(tmp_path / s) for s in ("pretrain", "init", "sel", "final", "eval")}
    reports: list[dict[str, Any]] = []
    uri = sha = ""
    if "pretrain" in cls.stages:
        found = download_weights(config, str(tmp_path / "store"))
        assert found["found"] is False
        out = pretrain(config, str(tmp_path / "store"), d["pretrain"])
        uri, sha = out["weights_uri"], out["weights_sha256"]
        reports += [found["report"], out["report"]]
    reports.append(cluster_init(config, d["init"], uri, sha))
    init = ClusterInitOut.load(d["init"])
    n, k = 300, 3
    assert init.labels.shape == (n,) and init.labels.dtype == np.int64
    assert 0 <= init.labels.min() and init.labels.max() < k
    for array in (init.embeddings, init.proba, init.membership):
        assert array is None or (array.shape[0] == n and array.dtype == np.float32)
    selection = ""
    if "confident-sample-selection" in cls.stages:
        reports.append(confident_sample_selection(config, d["init"], d["sel"]))
        sel = SelectionOut.load(d["sel"]).selected
        assert sel.indices.dtype == np.int64 and np.all((sel.indices >= 0) & (sel.indices < n))
        selection = d["sel"]
    final = d["init"]
    if "refine" in cls.stages:
        reports.append(refine(config, d["init"], d["final"], selection, uri, sha))
        result = RefineOut.load(d["final"])
        assert result.labels.shape == (n,) and result.labels.max() < k
        if result.proba is not None:
            assert result.proba.shape == (n, k)
            np.testing.assert_allclose(result.proba.sum(1), 1.0, atol=1e-4)
        final = d["final"]
    assert len(seen) == sum(s in cls.stages for s in ("pretrain", "cluster-init", "refine")) + (
        "confident-sample-selection" in cls.stages
    )
    assert all(y is None for y in seen)  # only evaluate reads labels
    for report in reports:  # compact: seconds and scalar metrics, never curves
        assert "curves" not in report and all(
            isinstance(v, float) for v in report["metrics"].values()
        )
    summary = evaluate(
        config, d["init"], final, reports, d["eval"], f"sqlite:///{tmp_path}/m.db",
        selection_dir=selection, weights_uri=uri, weights_sha256=sha,
    )  # fmt: skip
    assert set(summary["metrics"]) >= {"acc", "nmi", "ari"}
    # label-free scores on the embedding the method ends with, when it uses two clusters or more
    # (the smoke settings may collapse a method to one)
    final_labels = RefineOut.load(final).labels if final != d["init"] else init.labels
    has_embedding = (Path(final) / "embeddings.npy").is_file()
    scores = {"size_entropy"}
    if has_embedding and np.unique(final_labels).size >= 2:
        scores |= {"silhouette", "calinski_harabasz", "davies_bouldin"}
    assert set(summary["internal"]) == scores, (has_embedding, np.bincount(final_labels))
    assert (Path(d["eval"]) / "assignments.csv").is_file()
    assert list(summary["stages"]) == list(cls.stages)
    json.dumps(summary)

    # predict: the finished run assigns the images it was fitted on as it did (no re-training)
    root, record = find_run(d["eval"])
    again = predict_arrays(root, record, {"name": "fake"}, tmp_path / "predict")
    fitted = RefineOut.load(final).labels if final != d["init"] else init.labels
    agreement = float((np.asarray(again.labels) == fitted).mean())
    assert agreement >= 0.99, agreement
    assert again.proba is None or np.asarray(again.proba).shape == (n, k)
