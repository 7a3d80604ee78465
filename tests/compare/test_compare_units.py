"""Comparison grid, overrides scoping, aggregation and the markdown/CSV report."""

import csv
from pathlib import Path

import numpy as np
import pytest

from dcflow.compare import figures
from dcflow.compare.plan import Plan, RunKey, load_or_create, parse_list, parse_seeds
from dcflow.compare.report import (
    Record,
    aggregate,
    load_ledger,
    merge_records,
    records_from_runs,
    save_ledger,
    write_csv,
    write_markdown,
)
from dcflow.compare.runner import command, scoped_overrides
from dcflow.compare.tuning import load_tuning, options_off, tuned_on
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


def test_markdown_and_csv_carry_the_paper_figure(tuning: Path, tmp_path: Path) -> None:
    runs = [_run("aspc-da", s, 0.9 + s / 100, start=s) for s in range(3)]
    for r in runs:
        r["tags"]["dataset"] = "usps"
    rows = aggregate(records_from_runs(runs))
    md = write_markdown(rows, tmp_path / "r.md", "# t").read_text()
    assert "| usps | all | aspc-da | on | 0 1 2 | 0.910 ± 0.010 |" in md
    # the paper's figure says its split, subset and backbone, and marks recalled metrics
    assert "0.982ʳ/0.951ʳ/– (all, 9,298 images, MLP autoencoder" in md and "TKDE 2020" in md
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


TUNING = """
usps:
  refine.assign: {paper: head, kind: option, chosen_on: usps, why: "picked by USPS ACC"}
  model.widths: {paper: [64, 128], kind: scale, chosen_on: "", why: "CPU"}
  view: {paper: {rotation: 0, noise: 0.1}, kind: option, chosen_on: "digits", why: "x"}
digits:
  refine.epochs: {paper: 10, kind: option, chosen_on: "digits:train", why: "train split"}
"""


@pytest.fixture
def tuning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "tuning.yaml").write_text(TUNING)
    monkeypatch.setenv("DCFLOW_CONFIG_DIR", str(tmp_path))
    load_tuning.cache_clear()
    yield tmp_path
    load_tuning.cache_clear()


def test_options_off_sets_every_option_to_the_paper_and_keeps_the_scale(tuning: Path) -> None:
    assert options_off("m", "usps") == ["refine.assign=head", "view={noise: 0.1, rotation: 0}"]
    assert options_off("m", "mnist") == [] and options_off("m", "npz:/x.npz") == []
    assert tuned_on("m", "usps") == ["refine.assign"]  # chosen on digits: not tuned on usps
    assert tuned_on("m", "digits") == ["refine.epochs"]  # a split of digits is still digits
    plan = Plan(["m"], ["usps"], [0], split="train", eval_split="test", options=["on", "off"])
    keys = plan.keys()
    assert [k.options for k in keys] == ["on", "off"] and keys[1].slug == "m__usps__s0__off"
    on, off = (command(plan, k, tuning) for k in keys)
    assert on[on.index("--split") + 1] == "train" and on[on.index("--eval-split") + 1] == "test"
    assert "refine.assign=head" not in on and "refine.assign=head" in off
    assert "options=off" in off and "options=on" in on
    assert not any("widths" in item for item in off)


def test_a_broken_tuning_entry_is_one_error(tuning: Path) -> None:
    (tuning / "m" / "tuning.yaml").write_text("usps:\n  a.b: {paper: 1, kind: knob}\n")
    with pytest.raises(ConfigError, match="usps.a.b"):
        load_tuning("m")


def test_the_report_puts_held_out_beside_fit_and_marks_tuned_cells(
    tuning: Path, tmp_path: Path
) -> None:
    runs = []
    for options, acc in (("on", 0.9), ("off", 0.7)):
        for s in range(3):
            r = _run("m", s, acc + s / 10 if options == "off" else acc, start=s, heldout_acc=0.5)
            r["tags"].update(dataset="usps", split="train", eval_split="test", options=options)
            r["tags"]["proba_kind"] = "constructed"
            r["metrics"]["ece"] = 0.1
            runs.append(r)
    rows = aggregate(records_from_runs(runs))
    assert [(r["options"], r["n"]) for r in rows] == [("off", 3), ("on", 3)]
    md = write_markdown(rows, tmp_path / "r.md", "# t").read_text()
    on_row = next(ln for ln in md.splitlines() if "| m † | on |" in ln)
    assert "| usps | train | m † | on | 0 1 2 | 0.900 ± 0.000 |" in on_row
    assert "| test | 0.500 ± 0.000 |" in on_row and "0.100 ± 0.000 ᶜ" in on_row
    off_row = next(ln for ln in md.splitlines() if "| m | off |" in ln)
    assert "0.800 ± 0.100 ⚠" in off_row  # spread over seeds above 0.05 is flagged
    assert "m: refine.assign" in md


def test_a_comparison_keeps_its_protocol(tmp_path: Path) -> None:
    load_or_create(tmp_path, Plan(["a"], ["digits"], [0], split="train", eval_split="test"))
    with pytest.raises(ConfigError, match="another --out"):
        load_or_create(tmp_path, Plan(["a"], ["digits"], [0]))


def test_merge_keeps_the_complete_copy_of_a_run_and_the_latest_run(tmp_path: Path) -> None:
    """A ledger copy taken before ``wall_seconds`` was logged never hides MLflow's full copy."""
    partial = Record("scan", "mnist", 0, {"acc": 0.6}, "r1", start_time=10)
    full = Record("scan", "mnist", 0, {"acc": 0.6, "wall_seconds": 300.0}, "r1", start_time=10)
    ledger = load_ledger(save_ledger([partial], tmp_path / "records.json"))
    for groups in (ledger, [full]), ([full], ledger):
        (kept,) = merge_records(*groups)
        assert kept.metrics == {"acc": 0.6, "wall_seconds": 300.0}
    rerun = Record("scan", "mnist", 0, {"acc": 0.7}, "r2", start_time=20)
    (kept,) = merge_records([rerun], [full])  # a later run of the cell replaces the earlier
    assert kept.run_id == "r2"
    assert len(merge_records([full], [Record("scan", "mnist", 1, {}, "r3")])) == 2
