from __future__ import annotations

import ast
import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import dcflow_components
import numpy as np
import pytest

from dcflow import artifacts as art
from dcflow.config import build_run_config
from dcflow.errors import WeightsError
from dcflow.methods.registry import get_method
from dcflow.storage import sha256_file

pytestmark = pytest.mark.usefixtures("isolated_env")

COMPONENT_DIR = Path(dcflow_components.__file__).parent
PIPELINE_STAGES = (
    "download-weights",
    "pretrain",
    "cluster-init",
    "confident-sample-selection",
    "refine",
    "evaluate",
)


def _fn(name: str) -> Any:
    return dcflow_components.COMPONENTS[name].python_func


def _artifact(path: Path) -> SimpleNamespace:
    path.mkdir(parents=True, exist_ok=True)
    return SimpleNamespace(path=str(path))


@pytest.fixture(scope="module")
def config_json() -> str:
    tiny = [
        "pretrain.hidden_dims=[32]",
        "pretrain.epochs=3",
        "pretrain.batch_size=64",
        "kmeans.n_init=2",
        "refine.max_iter=3",
        "refine.batch_size=64",
    ]
    method = get_method("aspc-da")
    cfg = build_run_config(
        "aspc-da", method.Config, {"name": "digits", "limit": 200}, overrides=tiny, use_preset=False
    )
    return cfg.to_json()


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory, config_json: str) -> dict[str, Any]:
    """Every stage's python_func in pipeline order, in this process."""
    root = tmp_path_factory.mktemp("components")
    store = str(root / "store")
    out: dict[str, Any] = {"root": root, "store": store}
    found, uri, sha, reports = _fn("download-weights")(config=config_json, weights_store=store)
    out["download"] = (found, uri, sha)
    out["reports"] = [json.loads(reports)]
    uri, sha, reports = _fn("pretrain")(
        config=config_json, weights_store=store, reports=reports, out=_artifact(root / "pretrain")
    )
    out["weights"] = (uri, sha)
    out["reports"].append(json.loads(reports))
    init, sel, final = _artifact(root / "init"), _artifact(root / "sel"), _artifact(root / "final")
    (reports,) = _fn("cluster-init")(
        config=config_json, weights_uri=uri, weights_sha256=sha, reports=reports, out=init
    )
    out["reports"].append(json.loads(reports))
    (reports,) = _fn("confident-sample-selection")(
        config=config_json, reports=reports, init=init, out=sel
    )
    out["reports"].append(json.loads(reports))
    (reports,) = _fn("refine")(
        config=config_json,
        weights_uri=uri,
        weights_sha256=sha,
        reports=reports,
        init=init,
        selection=sel,
        out=final,
    )
    out["reports"].append(json.loads(reports))
    out["final_reports"] = reports
    return out


@pytest.fixture(scope="module")
def evaluated(pipeline: dict[str, Any], config_json: str) -> dict[str, Any]:
    """The evaluate component on the pipeline's artifacts (a fresh sqlite MLflow store: ~10 s)."""
    root = pipeline["root"]
    logged: dict[str, float] = {}
    (summary,) = _fn("evaluate")(
        config=config_json,
        reports=pipeline["final_reports"],
        init=SimpleNamespace(path=str(root / "init")),
        final=SimpleNamespace(path=str(root / "final")),
        tracking_uri=f"sqlite:///{root}/mlflow.db",
        experiment="dcflow-tests",
        job_id="job-1",
        out=_artifact(root / "eval"),
        metrics=SimpleNamespace(log_metric=logged.__setitem__),
        confusion=SimpleNamespace(path=str(root / "kfp" / "confusion.md")),
        selection=SimpleNamespace(path=str(root / "sel")),
    )
    return {**pipeline, "summary": json.loads(summary), "kfp_metrics": logged}


def test_registry_holds_a_kfp_component_per_stage() -> None:
    from kfp.dsl.python_component import PythonComponent

    assert set(PIPELINE_STAGES) <= set(dcflow_components.COMPONENTS)
    for name, comp in dcflow_components.COMPONENTS.items():
        assert isinstance(comp, PythonComponent), name
        assert callable(comp.python_func)
        assert comp.component_spec.name == name


def test_reports_grow_by_one_entry_per_stage(pipeline: dict[str, Any]) -> None:
    stages = [
        "download-weights",
        "pretrain",
        "cluster-init",
        "confident-sample-selection",
        "refine",
    ]
    for i, reports in enumerate(pipeline["reports"]):
        assert [r["stage"] for r in reports] == stages[: i + 1]
    assert pipeline["reports"][-1][1]["skipped"] is False
    assert all(r["seconds"] >= 0 for r in pipeline["reports"][-1])


def test_first_lookup_misses_and_weights_round_trip(
    pipeline: dict[str, Any], config_json: str
) -> None:
    assert pipeline["download"] == (False, "", "")
    uri, sha = pipeline["weights"]
    assert Path(uri).is_file() and sha256_file(uri) == sha
    assert Path(uri).is_relative_to(Path(pipeline["store"]).resolve())
    found, uri2, sha2, reports = _fn("download-weights")(
        config=config_json, weights_store=pipeline["store"]
    )
    assert (found, uri2, sha2) == (True, uri, sha)
    assert json.loads(reports)[0]["metrics"] == {"found": 1.0}


def test_verify_weights(pipeline: dict[str, Any]) -> None:
    uri, sha = pipeline["weights"]
    uri2, sha2, reports = _fn("verify-weights")(weights_uri=uri, weights_sha256=sha, reports="[]")
    assert (uri2, sha2) == (uri, sha)
    (report,) = json.loads(reports)
    assert report["stage"] == "pretrain" and report["skipped"] is True
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        _fn("verify-weights")(weights_uri=uri, weights_sha256="0" * 64, reports="[]")


def test_stage_artifacts(pipeline: dict[str, Any]) -> None:
    root = pipeline["root"]
    assert art.load_npy(root / "init", art.CENTERS).shape == (10, 10)
    assert art.load_npy(root / "final", art.LABELS).shape == (200,)
    assert art.load_npz(root / "sel", art.SELECTED)["weights"].shape == (200,)
    for d in ("pretrain", "init", "sel", "final"):
        assert (root / d / art.REPORT).is_file(), d


@pytest.mark.slow
def test_evaluate_summary(evaluated: dict[str, Any]) -> None:
    pipeline = evaluated
    s = pipeline["summary"]
    assert set(s["metrics"]) == {"acc", "nmi", "ari"}
    assert all(0.0 <= s["metrics"][k] <= 1.0 for k in ("acc", "nmi"))
    assert s["method"] == "aspc-da" and s["n_samples"] == 200
    assert list(s["stages"]) == list(PIPELINE_STAGES)
    assert "acc" in s["stages"]["cluster-init"]["metrics"]
    assert s["mlflow"]["run_id"]
    metrics = json.loads((pipeline["root"] / "eval" / art.METRICS).read_text())
    assert metrics["final"] == pytest.approx(s["metrics"])
    assert (pipeline["root"] / "eval" / art.REPORT).is_file()
    preds = (pipeline["root"] / "eval" / art.PREDICTIONS).read_text().splitlines()
    assert preds[0] == "index,label,cluster" and len(preds) == 201
    labels = art.load_npy(pipeline["root"] / "final", art.LABELS)
    assert np.array_equal([int(r.split(",")[2]) for r in preds[1:]], labels)


def test_kfp_ui_gets_metrics_and_the_confusion_table(evaluated: dict[str, Any]) -> None:
    assert evaluated["kfp_metrics"] == pytest.approx(evaluated["summary"]["metrics"])
    table = (evaluated["root"] / "kfp" / "confusion.md").read_text().splitlines()
    assert table[0].startswith("### aspc-da on") and table[2].startswith("| cluster | class 0")
    rows = [[int(v) for v in line.strip("|").split("|")[1:]] for line in table[4:]]
    assert sum(map(sum, rows)) == evaluated["summary"]["n_samples"]


@pytest.mark.slow
def test_mlflow_holds_the_run(evaluated: dict[str, Any]) -> None:
    pipeline = evaluated
    from mlflow.tracking import MlflowClient

    ml = pipeline["summary"]["mlflow"]
    client = MlflowClient(tracking_uri=ml["tracking_uri"])
    run = client.get_run(ml["run_id"])
    assert run.data.tags["method"] == "aspc-da" and run.data.tags["pipeline_job_id"] == "job-1"
    assert run.data.metrics["acc"] == pytest.approx(pipeline["summary"]["metrics"]["acc"])
    children = client.search_runs(
        [ml["experiment_id"]], f"tags.mlflow.parentRunId = '{ml['run_id']}'"
    )
    assert sorted(c.data.tags["stage"] for c in children) == sorted(PIPELINE_STAGES)


def _top_level_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    mods: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            mods.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: relative import"
            mods.add((node.module or "").split(".")[0])
    return mods


@pytest.mark.parametrize("path", sorted(COMPONENT_DIR.glob("*.py")), ids=lambda p: p.name)
def test_component_modules_import_only_stdlib_and_kfp(path: Path) -> None:
    allowed = set(sys.stdlib_module_names) | {"kfp", "dcflow_components"}
    assert _top_level_modules(path) <= allowed


def test_components_never_pip_install() -> None:
    for name, comp in dcflow_components.COMPONENTS.items():
        container = comp.component_spec.implementation.container
        command = " ".join([*(container.command or []), *(container.args or [])])
        assert "pip install" not in command, name
        assert "kfp.dsl.executor_main" in command, name
