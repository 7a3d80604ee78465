"""benchmarks/bench.py and its bare loops run on a 200-sample digits subset (1 epoch, < 10 s)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pytest
import torch

from benchmarks import bench

ROOT = Path(__file__).resolve().parents[2]

CPU = torch.device("cpu")


@pytest.mark.parametrize("name", list(bench.LOOPS))
def test_bare_loop_trains_one_epoch(name: str) -> None:
    """Every bare loop runs one epoch of its method's preset model on 200 samples."""
    loop = bench.LOOPS[name]
    method, data = bench._method(loop.method, "digits", "", ["dataset.limit=200", *loop.sets(1)])
    assert data.n == 200
    rate = loop.bare(method, data, CPU, 1)
    assert math.isfinite(rate) and rate > 0


def test_training_loop_reports_hook_and_bare_rates() -> None:
    """The side-by-side measurement returns positive rates, their ratio, and a table row."""
    args = argparse.Namespace(dataset="digits", data_dir="", epochs=1, rounds=1)
    real = bench.LOOPS["self-cc"]
    sets = lambda e: ["dataset.limit=200", *real.sets(e)]  # noqa: E731
    loop = bench.Loop(real.method, real.title, sets, real.bare, 1)
    res = bench.training_loop(loop, args, CPU)
    assert res["n"] == 200 and res["epochs"] == 1
    assert res["hook_samples_s"] > 0 and res["bare_samples_s"] > 0
    assert res["ratio"] == pytest.approx(res["hook_samples_s"] / res["bare_samples_s"])
    km = {"dcflow_s": 2.0, "sklearn_s": 1.0, "speed_ratio": 0.5, "inertia_ratio": 1.0}
    rows = bench.table(
        {"device": "cpu", "threads": 1, "train": {"self-cc": res}, "kmeans": km}, "d"
    )
    assert len(rows) == 4 and rows[2].startswith(f"| {real.title}, d n=200, 1 ep")
    assert rows[2].endswith(f"| {res['ratio']:.2f} |")
