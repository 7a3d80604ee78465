"""predict: a finished run assigns images without re-training, from its directory, from MLflow
(its logged model, also as an MLflow pyfunc), and for the held-out split of ``--eval-split``."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from dcflow.cli import main

PLUGINS = Path(__file__).resolve().parents[1] / "pipelines" / "plugins"


def _clusters(path: str | Path) -> dict[int, int]:
    with open(path) as fh:
        return {int(r["index"]): int(r["cluster"]) for r in csv.DictReader(fh)}


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("predict")
    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    mp.setenv("PYTHONPATH", str(PLUGINS))
    mp.setenv("DCFLOW_PLUGINS", "toy_layout")
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    try:
        import dcflow.methods as methods

        methods._load_plugins()
        argv = ["run", "toy-init-refine", "--dataset", "digits", "--split", "train"]
        assert main([*argv, "--eval-split", "test", "--json", "run.json", "--quiet"]) == 0
    finally:
        mp.undo()
    return root, json.loads((root / "run.json").read_text())


def test_the_held_out_split_is_scored_apart(fitted: tuple[Path, dict]) -> None:
    _, summary = fitted
    assert summary["n_samples"] == 1438
    held = summary["heldout"]
    assert held["split"] == "test" and held["n_samples"] == 359
    assert set(held["metrics"]) >= {"acc", "nmi", "ari"} and held["metrics"]["acc"] > 0.5
    from mlflow.tracking import MlflowClient

    run = MlflowClient(summary["mlflow"]["tracking_uri"]).get_run(summary["mlflow"]["run_id"])
    assert run.data.metrics["heldout_acc"] == pytest.approx(held["metrics"]["acc"])
    assert run.data.tags["eval_split"] == "test"


def test_predict_from_the_run_directory_reproduces_the_fit(
    fitted: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    root, summary = fitted
    monkeypatch.chdir(root)
    argv = ["predict", summary["artifacts"], "--dataset", "digits", "--split", "train"]
    assert main([*argv, "--out", "again.csv", "--json", "p.json"]) == 0
    assert "predicted 1438 images" in capsys.readouterr().out
    assert _clusters(root / "again.csv") == _clusters(summary["predictions"])
    assert json.loads((root / "p.json").read_text())["n_samples"] == 1438


def test_predict_takes_fewer_images_than_clusters(
    fitted: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from sklearn.datasets import load_digits

    root, summary = fitted
    monkeypatch.chdir(root)
    np.savez(root / "four.npz", x=(load_digits().images[:4] / 16.0).astype(np.float32))
    argv = ["predict", summary["artifacts"], "--dataset", f"npz:{root / 'four.npz'}"]
    assert main([*argv, "--out", "four.csv"]) == 0  # 4 images, K = 10: assigning needs no K
    assert "predicted 4 images" in capsys.readouterr().out
    fit = _clusters(summary["predictions"])
    assert _clusters(root / "four.csv") == {i: fit[i] for i in range(4)}


def test_predict_from_mlflow_and_as_a_pyfunc(
    fitted: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, summary = fitted
    monkeypatch.chdir(root)
    ml = summary["mlflow"]
    argv = ["predict", ml["run_id"], "--dataset", "digits", "--split", "train"]
    assert main([*argv, "--tracking-uri", ml["tracking_uri"], "--out", "ml.csv"]) == 0
    assert _clusters(root / "ml.csv") == _clusters(summary["predictions"])

    import mlflow.pyfunc
    from sklearn.datasets import load_digits

    mlflow.set_tracking_uri(ml["tracking_uri"])
    model = mlflow.pyfunc.load_model(f"runs:/{ml['run_id']}/model")
    images = (load_digits().images[:20] / 16.0).astype(np.float32)
    fitted_first = _clusters(summary["predictions"])
    expected = [fitted_first[i] for i in range(20) if i in fitted_first]
    got = np.asarray(model.predict(images))
    assert got.shape == (20,)
    assert [got[i] for i in range(20) if i in fitted_first] == expected


def test_an_unknown_run_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["predict", str(tmp_path), "--dataset", "digits"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds no finished dcflow run" in err[0]


def test_unlabeled_folders_in_per_file_clusters_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from PIL import Image
    from sklearn.datasets import load_digits

    images = load_digits().images.astype(np.uint8) * 16
    (tmp_path / "fit").mkdir()
    for i in range(60):
        Image.fromarray(images[i]).save(tmp_path / "fit" / f"{i:03d}.png")
    new = tmp_path / "new" / "deeper"
    new.mkdir(parents=True)
    for i in range(60, 70):
        Image.fromarray(images[i]).save(new / f"n{i}.png")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(PLUGINS))
    monkeypatch.setenv("DCFLOW_PLUGINS", "toy_layout")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    import dcflow.methods as methods

    methods._load_plugins()
    argv = ["run", "toy-init-refine", "--dataset", "folder:fit", "--set", "dataset.n_clusters=4"]
    assert main([*argv, "--json", "run.json", "--quiet"]) == 0
    summary = json.loads((tmp_path / "run.json").read_text())
    assert summary["metrics"] == {} and summary["n_samples"] == 60  # no labels, no ACC
    with open(summary["predictions"]) as fh:
        rows = list(csv.DictReader(fh))
    assert [r["file"] for r in rows[:2]] == ["000.png", "001.png"] and rows[0]["label"] == ""
    argv = ["predict", summary["artifacts"], "--dataset", "folder:new", "--out", "new.csv"]
    assert main(argv) == 0
    assert "predicted 10 images" in capsys.readouterr().out
    with open(tmp_path / "new.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["file"] for r in rows] == [f"deeper/n{i}.png" for i in range(60, 70)]
    assert all(0 <= int(r["cluster"]) < 4 for r in rows)


def test_label_free_outputs_of_every_run(fitted: tuple[Path, dict]) -> None:
    _, summary = fitted
    out = Path(summary["predictions"]).parent
    with open(out / "assignments.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 1438 and set(rows[0]) == {"file", "cluster", "confidence", "distance"}
    assert sum(summary["cluster_sizes"]) == 1438
    internal = summary["internal"]
    # the toy saves no embeddings: only the size entropy (the contract test checks the rest)
    assert set(internal) == {"size_entropy"} and 0 < internal["size_entropy"] <= 1
    from PIL import Image

    with Image.open(out / "prototypes.png") as grid:
        assert grid.width > grid.height / 2  # one row per cluster, 13 tiles a row
    from mlflow.tracking import MlflowClient

    run = MlflowClient(summary["mlflow"]["tracking_uri"]).get_run(summary["mlflow"]["run_id"])
    assert run.data.metrics["internal_size_entropy"] == pytest.approx(internal["size_entropy"])
