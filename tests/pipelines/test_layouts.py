"""Pipelines for methods that skip pretrain and selection: compile, run locally, and bad layouts."""

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = Path(__file__).parent / "plugins"

from dcflow_pipelines import build as build_mod  # noqa: E402

from dcflow.cli import main  # noqa: E402
from dcflow.errors import ConfigError  # noqa: E402


@pytest.fixture
def plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(PLUGINS))
    monkeypatch.setenv("DCFLOW_PLUGINS", "toy_layout")
    import dcflow.methods as methods

    methods._load_plugins()


@pytest.mark.parametrize(
    "stages",
    [
        ("pretrain", "cluster-init", "evaluate"),  # pretrain without download-weights
        ("download-weights", "pretrain", "evaluate"),  # no cluster-init
        ("cluster-init", "refine", "confident-sample-selection", "evaluate"),  # wrong order
        ("cluster-init", "refine"),  # no evaluate
    ],
)
def test_bad_layouts_are_rejected(stages: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="no pipeline layout"):
        build_mod.check_layout(stages)


def test_unknown_plugin_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import dcflow.methods as methods

    monkeypatch.setenv("DCFLOW_PLUGINS", "no_such_module_xyz")
    with pytest.raises(ConfigError, match="no_such_module_xyz"):
        methods._load_plugins()


@pytest.mark.parametrize("method", ["toy-init-refine", "toy-init-only"])
def test_short_layout_runs_locally(
    method: str, plugins: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    args = ["run", method, "--set", "dataset.limit=200", "--json", "s.json", "--quiet"]
    assert main(args) == 0
    summary = json.loads((tmp_path / "s.json").read_text())
    expected = (
        ["cluster-init", "refine", "evaluate"]
        if "refine" in method
        else [
            "cluster-init",
            "evaluate",
        ]
    )
    assert list(summary["stages"]) == expected
    assert summary["metrics"]["acc"] == summary["stages"]["cluster-init"]["metrics"]["acc"]
    assert summary["metrics"]["acc"] > 0.5
