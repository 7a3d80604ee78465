"""The shipped ``configs/<method>/tuning.yaml`` files: every departure of a preset from the paper
is listed, with the paper's value, and the options-off row is a valid config."""

from __future__ import annotations

import pytest

from dcflow.compare.tuning import load_tuning, options_off, set_value
from dcflow.config import build_run_config, config_dir
from dcflow.methods.registry import get_method

CELLS = [
    (m.name, ds)
    for m in sorted(config_dir().iterdir())
    if (m / "tuning.yaml").is_file()
    for ds in load_tuning(m.name)
]


def _config(method: str, dataset: str, sets: list[str], preset: bool = True) -> dict:
    cls = get_method(method)
    cfg = build_run_config(method, cls.Config, {"name": dataset}, overrides=sets, use_preset=preset)
    cls(cfg)  # the method validates its params
    return {"params": cfg.params, "limit": cfg.dataset.limit}


def test_every_method_says_where_its_presets_depart() -> None:
    assert {m for m, _ in CELLS} >= {
        "aspc-da", "self-cc", "scan", "ruc", "propos", "hadis", "cc", "uldc"
    }  # fmt: skip
    assert {d for _, d in CELLS} >= {"digits", "usps", "mnist"}


@pytest.mark.parametrize(("method", "dataset"), CELLS)
def test_the_paper_values_undo_the_preset_and_options_off_runs(method: str, dataset: str) -> None:
    entries = load_tuning(method)[dataset]
    every = [f"{k}={set_value(e['paper'])}" for k, e in entries.items()]
    paper = _config(method, dataset, [], preset=False)
    # all entries back at the paper's values: the defaults exactly (threads is no departure)
    assert _config(method, dataset, every)["params"] == paper["params"]
    # each option is a real departure: setting it alone to the paper's value changes the preset
    preset = _config(method, dataset, [])
    for item in options_off(method, dataset):
        assert _config(method, dataset, [item]) != preset, item
    off = _config(method, dataset, options_off(method, dataset))
    assert off != preset or not options_off(method, dataset)
