"""Same seed twice on the CPU: identical metrics, pretrained weights included (no cache shared)."""

import json
from pathlib import Path

import pytest
import torch

from dcflow.cli import main

TINY = [
    "--set", "dataset.limit=300", "--set", "pretrain.hidden_dims=[64,64]",
    "--set", "pretrain.epochs=3", "--set", "refine.max_iter=4", "--set", "kmeans.n_init=2",
    "--set", "threads=1", "--set", "device=cpu",
]  # fmt: skip


def _run(root: Path, name: str, seed: int) -> dict:
    args = ["run", "aspc-da", *TINY, "--seed", str(seed), "--weights-store", str(root / name)]
    assert main([*args, "--json", str(root / f"{name}.json"), "--quiet"]) == 0
    return json.loads((root / f"{name}.json").read_text())


def test_same_seed_same_metrics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    a, b = _run(tmp_path, "a", 0), _run(tmp_path, "b", 0)
    assert not a["stages"]["pretrain"]["skipped"] and not b["stages"]["pretrain"]["skipped"]
    assert a["metrics"] == b["metrics"]
    wa, wb = (torch.load(next((tmp_path / n).rglob("weights.pt")), weights_only=True)
              for n in ("a", "b"))  # fmt: skip
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    c = _run(tmp_path, "c", 1)
    assert c["metrics"] != a["metrics"]  # the seed matters
