"""ASPC-DA on a digits subset through the real kfp.local pipeline, driven by `dcflow run`."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from dcflow.cli import main
from dcflow.clustering.metrics import cluster_metrics

SETTINGS = [
    "--set",
    "dataset.limit=300",
    "--set",
    "pretrain.hidden_dims=[64,64]",
    "--set",
    "pretrain.epochs=4",
    "--set",
    "refine.max_iter=3",
    "--set",
    "kmeans.n_init=2",
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, dict]:
    root = tmp_path_factory.mktemp("run")
    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    mp.delenv("DCFLOW_WEIGHTS_STORE", raising=False)
    (root / "systmp").mkdir()
    mp.setenv("TMPDIR", str(root / "systmp"))  # where kfp's `mktemp -d` would leave its files
    try:
        assert main(["run", "aspc-da", *SETTINGS, "--json", "first.json", "--quiet"]) == 0
        assert main(["run", "aspc-da", *SETTINGS, "--json", "second.json", "--quiet"]) == 0
    finally:
        mp.undo()
    first = json.loads((root / "first.json").read_text())
    second = json.loads((root / "second.json").read_text())
    return root, first, second


def test_stage_processes_leave_nothing_in_tmpdir(runs: tuple[Path, dict, dict]) -> None:
    root, _, _ = runs
    assert list((root / "systmp").iterdir()) == []


def test_summary_contract(runs: tuple[Path, dict, dict]) -> None:
    _, first, _ = runs
    assert set(first) >= {
        "method",
        "dataset",
        "n_samples",
        "seed",
        "metrics",
        "stages",
        "wall_seconds",
        "mlflow",
        "artifacts",
        "predictions",
    }
    assert first["method"] == "aspc-da" and first["n_samples"] == 300
    assert set(first["metrics"]) == {"acc", "nmi", "ari"}
    assert list(first["stages"]) == [
        "download-weights",
        "pretrain",
        "cluster-init",
        "confident-sample-selection",
        "refine",
        "evaluate",
    ]
    assert first["stages"]["pretrain"]["skipped"] is False
    assert "acc" in first["stages"]["cluster-init"]["metrics"]
    assert set(first["mlflow"]) == {"tracking_uri", "experiment_id", "run_id"}


def test_metrics_equal_recomputed_from_predictions(runs: tuple[Path, dict, dict]) -> None:
    _, first, _ = runs
    with open(first["predictions"]) as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 300 and list(rows[0]) == ["index", "label", "cluster"]
    y = np.array([int(r["label"]) for r in rows])
    pred = np.array([int(r["cluster"]) for r in rows])
    recomputed = cluster_metrics(y, pred)
    for key, value in first["metrics"].items():
        assert recomputed[key] == pytest.approx(value, abs=1e-12)


def test_artifacts_exist_and_load(runs: tuple[Path, dict, dict]) -> None:
    _, first, _ = runs
    run_dir = Path(first["artifacts"])
    init = run_dir / "cluster-init" / "out"
    assert np.load(init / "embeddings.npy").shape == (300, 10)
    assert np.load(init / "centers.npy").shape == (10, 10)
    labels = np.load(run_dir / "refine" / "out" / "labels.npy")
    assert labels.dtype == np.int64 and labels.min() >= 0 and labels.max() < 10
    sel = np.load(run_dir / "confident-sample-selection" / "out" / "selected.npz")
    assert set(np.unique(sel["weights"])) <= {0.0, 1.0}
    ev = run_dir / "evaluate" / "out"
    for name in (
        "metrics.json",
        "predictions.csv",
        "confusion.png",
        "embedding.png",
        "config.json",
    ):
        assert (ev / name).stat().st_size > 0
    assert json.loads((ev / "config.json").read_text())["method"] == "aspc-da"


def test_second_run_reuses_cached_weights(runs: tuple[Path, dict, dict]) -> None:
    _, first, second = runs
    assert second["stages"]["download-weights"]["metrics"]["found"] == 1.0
    assert second["stages"]["pretrain"]["skipped"] is True
    assert second["metrics"] == first["metrics"]  # same weights, same seed: same result


def test_mlflow_holds_parent_and_stage_runs(runs: tuple[Path, dict, dict]) -> None:
    from mlflow.tracking import MlflowClient

    _, first, _ = runs
    ml = first["mlflow"]
    client = MlflowClient(tracking_uri=ml["tracking_uri"])
    parent = client.get_run(ml["run_id"])
    assert parent.data.tags["method"] == "aspc-da" and parent.data.tags["dataset"] == "digits"
    assert parent.data.tags["seed"] == "0" and parent.data.tags["pipeline_job_id"]
    assert parent.data.metrics["acc"] == pytest.approx(first["metrics"]["acc"])
    assert parent.data.params["pretrain.epochs"] == "4"
    children = client.search_runs(
        [ml["experiment_id"]], filter_string=f"tags.mlflow.parentRunId = '{ml['run_id']}'"
    )
    assert {c.data.tags["stage"] for c in children} == set(first["stages"])
    pre = next(c for c in children if c.data.tags["stage"] == "pretrain")
    assert len(client.get_metric_history(pre.info.run_id, "loss")) == 4
    artifacts = {a.path for a in client.list_artifacts(ml["run_id"])}
    assert {"predictions.csv", "confusion.png", "embedding.png", "config.json"} <= artifacts
