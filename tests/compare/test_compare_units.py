"""Comparison grid, overrides scoping, aggregation and the markdown/CSV report."""

import csv
from pathlib import Path

import numpy as np
import pytest

from dcflow.compare import figures
from dcflow.compare.plan import Plan, RunKey, load_or_create, parse_list, parse_seeds
from dcflow.compare.report import aggregate, records_from_runs, write_csv, write_markdown
from dcflow.compare.runner import scoped_overrides
from dcflow.errors import ConfigError


def test_grid_is_method_major_per_dataset() -> None:
    plan = Plan(["a", "b"], ["digits", "usps"], [0, 1])
    keys = plan.keys()
    assert len(keys) == 8
    assert keys[:4] == [
        RunKey("a", "digits", 0),
        RunKey("a", "digits", 1),
        RunKey("b", "digits", 0),
        RunKey("b", "digits", 1),
    ]
    assert RunKey("ruc", "npz:/x/y.npz", 2).slug == "ruc__npz__x_y.npz__s2"


def test_id_is_stable_and_resumed(tmp_path: Path) -> None:
    a = Plan(["a"], ["digits"], [0, 1])
    b = Plan(["a"], ["digits"], [0, 1])
    assert a.default_id() == b.default_id() != Plan(["a"], ["digits"], [0]).default_id()
    first = load_or_create(tmp_path, a)
    # a later invocation with a different grid keeps the stored comparison id (same MLflow view)
    later = load_or_create(tmp_path, Plan(["a", "c"], ["digits"], [0]))
    assert later.comparison == first.comparison


@pytest.mark.parametrize("text", ["0,,1", "a", "-1"])
def test_bad_seeds(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_seeds(text)


def test_parse_list() -> None:
    assert parse_list(" a, b ", "methods") == ["a", "b"]
    with pytest.raises(ConfigError, match="empty item"):
        parse_list("a,", "methods")


def test_scoped_overrides() -> None:
    items = ["seed=1", "ruc:refine.epochs=2", "scan:pretrain.epochs=3", "threads=1"]
    assert scoped_overrides(items, "ruc", ["ruc", "scan"]) == [
        "seed=1",
        "refine.epochs=2",
        "threads=1",
    ]
    assert scoped_overrides(["a.b=x:y"], "ruc", ["ruc"]) == ["a.b=x:y"]  # ':' inside the value
    with pytest.raises(ConfigError, match="not one of the compared"):
        scoped_overrides(["nope:a=1"], "ruc", ["ruc"])


def _run(method: str, seed: int, acc: float, start: int, **extra: float) -> dict:
    tags = {"method": method, "dataset": "digits", "seed": str(seed)}
    return {
        "run_id": f"{method}{seed}{start}",
        "tags": tags,
        "metrics": {"acc": acc, "nmi": acc, "ari": acc, **extra},
        "start_time": start,
    }


def test_records_keep_latest_run_per_cell_and_aggregate() -> None:
    runs = [
        _run("a", 0, 0.5, start=1),
        _run("a", 0, 0.7, start=2),  # a re-run of the same cell replaces the first
        _run("a", 1, 0.9, start=3),
        _run("b", 0, 0.6, start=4, ece=0.1),
        {"run_id": "x", "tags": {}, "metrics": {}, "start_time": 5},  # not a pipeline run
    ]
    records = records_from_runs(runs)
    assert [(r.method, r.seed, r.metrics["acc"]) for r in records] == [
        ("a", 0, 0.7),
        ("a", 1, 0.9),
        ("b", 0, 0.6),
    ]
    rows = {r["method"]: r for r in aggregate(records)}
    assert rows["a"]["n"] == 2
    assert rows["a"]["acc_mean"] == pytest.approx(0.8)
    assert rows["a"]["acc_std"] == pytest.approx(np.std([0.7, 0.9], ddof=1))
    assert "ece_mean" not in rows["a"] and rows["b"]["ece_mean"] == pytest.approx(0.1)


def test_markdown_and_csv_carry_the_paper_figure(tmp_path: Path) -> None:
    runs = [_run("aspc-da", s, 0.9 + s / 100, start=s) for s in range(3)]
    for r in runs:
        r["tags"]["dataset"] = "usps"
    rows = aggregate(records_from_runs(runs))
    md = write_markdown(rows, tmp_path / "r.md", "# t").read_text()
    assert "| usps | aspc-da | 0 1 2 | 0.910 ± 0.010 |" in md
    assert "0.982/0.951/–" in md and "TKDE 2020" in md
    with open(write_csv(rows, tmp_path / "r.csv")) as fh:
        (row,) = list(csv.DictReader(fh))
    assert row["acc_mean"] == "0.9100" and row["n"] == "3"


def test_figures_are_written(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 200)
    pred = np.column_stack([y, (y + 1) % 3, rng.uniform(0.3, 1, 200)])
    rows = aggregate(records_from_runs([_run("a", 0, 0.5, 1), _run("b", 0, 0.6, 2)]))
    paths = [
        figures.acc_bars(rows, tmp_path / "acc.png"),
        figures.reliability({"a": pred, "b": pred}, tmp_path / "rel.png", "t"),
        figures.confusion_grid({"a": pred}, tmp_path / "conf.png", "t"),
        figures.curves({"a": {"refine": {"loss": [[0, 1.0], [1, 0.5]]}}}, tmp_path / "c.png"),
    ]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
