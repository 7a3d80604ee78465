"""`dcflow run cc` then `dcflow run uldc` on a digits subset through the real kfp.local pipeline."""

import json
from pathlib import Path

import numpy as np
import pytest

from dcflow.cli import main

SHARED = [
    "dataset.limit=300",
    "model.widths=[64]",
    "model.instance_dim=16",
    "model.head_hidden=32",
    "pretrain.epochs=10",
    "pretrain.lr=0.003",
    "pretrain.batch_size=128",
]
REFINE = ["refine.epochs=2", "refine.batch_size=64", "refine.k_unc=8"]


def _args(method: str, out: str, extra: list[str]) -> list[str]:
    sets = [a for item in [*SHARED, *extra] for a in ("--set", item)]
    return ["run", method, "--dataset", "digits", *sets, "--json", out, "--quiet"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:
    root = tmp_path_factory.mktemp("cc-uldc")
    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    mp.delenv("DCFLOW_WEIGHTS_STORE", raising=False)
    try:
        assert main(_args("cc", "cc.json", [])) == 0
        assert main(_args("uldc", "uldc.json", REFINE)) == 0
    finally:
        mp.undo()
    return json.loads((root / "cc.json").read_text()), json.loads((root / "uldc.json").read_text())


def test_cc_pipeline_stages_and_metrics(runs: tuple[dict, dict]) -> None:
    cc, _ = runs
    assert list(cc["stages"]) == ["download-weights", "pretrain", "cluster-init", "evaluate"]
    assert cc["stages"]["pretrain"]["skipped"] is False
    assert {"acc", "nmi", "ari", "ece"} <= set(cc["metrics"])
    assert cc["metrics"]["acc"] > 0.3  # 10 epochs on 300 digits: well above chance (0.1)


def test_uldc_reuses_the_cc_weights(runs: tuple[dict, dict]) -> None:
    cc, uldc = runs
    assert uldc["stages"]["download-weights"]["metrics"]["found"] == 1.0
    assert uldc["stages"]["pretrain"]["skipped"] is True
    # same weights and seed: uldc's cluster-init is exactly cc's final assignment
    assert uldc["stages"]["cluster-init"]["metrics"]["acc"] == cc["metrics"]["acc"]


def test_uldc_final_stage_writes_labels_proba_embeddings(runs: tuple[dict, dict]) -> None:
    _, uldc = runs
    assert list(uldc["stages"]) == [
        "download-weights",
        "pretrain",
        "cluster-init",
        "refine",
        "evaluate",
    ]
    refine = Path(uldc["artifacts"]) / "refine" / "out"
    labels, proba = np.load(refine / "labels.npy"), np.load(refine / "proba.npy")
    assert labels.shape == (300,) and np.array_equal(labels, proba.argmax(1))
    assert np.load(refine / "embeddings.npy").shape == (300, 16)
    assert "ece" in uldc["metrics"] and 0.0 <= uldc["metrics"]["ece"] <= 1.0
    assert len((refine / "history.jsonl").read_text().splitlines()) == 2
