"""The Python API: ``dcflow.cluster`` and ``DeepClusterer`` over the pipeline of ``dcflow run``.

The fitted fixture runs ASPC-DA with its smoke settings on 300 digits twice (``cluster`` with
labels, then ``DeepClusterer.fit`` without: the same pixels, so the second run's pretrain is a
weights-cache hit); the README test runs the README's "From Python" block as written.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.utils import estimator_checks

import dcflow
from dcflow.api import ClusterResult, array_to_npz, data_source, set_items
from dcflow.config import parse_set
from dcflow.errors import ConfigError, DataError
from dcflow.estimator import DeepClusterer
from dcflow.methods.registry import get_method

ROOT = Path(__file__).resolve().parents[1]
SMOKE = {".".join(k): v for k, v in map(parse_set, get_method("aspc-da").smoke)}


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DCFLOW_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "arrays"


def _digits(n: int) -> tuple[np.ndarray, np.ndarray]:
    bunch = load_digits()
    return (bunch.images[:n] * 255 / 16).astype(np.uint8), bunch.target[:n]


def test_import_dcflow_is_cheap_and_exports_lazily() -> None:
    import subprocess
    import sys

    code = (
        "import sys, dcflow\n"
        "heavy = [m for m in ('torch', 'kfp', 'sklearn') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert dcflow.cluster.__module__ == 'dcflow.api' and 'kfp' not in sys.modules\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert dcflow.DeepClusterer is DeepClusterer and dcflow.ClusterResult is ClusterResult
    with pytest.raises(AttributeError):
        _ = dcflow.nope  # type: ignore[attr-defined]


def test_arrays_go_to_one_content_keyed_npz(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    x, y = _digits(20)
    first = array_to_npz(x)
    assert first == array_to_npz(x.copy()) and first.parent == cache
    assert re.fullmatch(r"[0-9a-f]{64}\.npz", first.name)
    assert array_to_npz(x, y) != first  # labels are part of the content
    assert sorted(p.name for p in cache.iterdir()) == sorted([first.name, array_to_npz(x, y).name])
    with np.load(first) as archive:
        assert archive["x"].dtype == np.uint8 and np.array_equal(archive["x"], x)
    floats = array_to_npz(x / 255.0)  # float64 in [0, 1] is kept as float32
    with np.load(floats) as archive:
        assert archive["x"].dtype == np.float32

    def crash(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError):
        array_to_npz(x[:5])
    assert len(list(cache.iterdir())) == 3  # no partial file, no temporary left behind


@pytest.mark.parametrize(
    ("images", "labels", "needle"),
    [
        (np.zeros((4, 64), np.uint8), None, "[N,H,W]"),
        (np.zeros((4, 8, 8, 2), np.uint8), None, "C 1 or 3"),
        (np.full((4, 8, 8), 2.0), None, "[0, 1]"),
        (np.zeros((4, 8, 8), np.int32), None, "uint8"),
        (np.zeros((4, 8, 8), np.uint8), np.arange(3), "4 integers"),
    ],
)
def test_bad_arrays_are_data_errors(
    cache: Path, images: np.ndarray, labels: np.ndarray | None, needle: str
) -> None:
    with pytest.raises(DataError, match=re.escape(needle)):
        array_to_npz(images, labels)
    assert not cache.exists()


def test_sources(tmp_path: Path, cache: Path) -> None:
    (tmp_path / "imgs").mkdir()
    np.savez(tmp_path / "d.npz", x=np.zeros((2, 8, 8), np.uint8))
    assert data_source(tmp_path / "imgs") == f"folder:{tmp_path / 'imgs'}"
    assert data_source(str(tmp_path / "imgs")) == f"folder:{tmp_path / 'imgs'}"
    assert data_source(tmp_path / "d.npz") == f"npz:{tmp_path / 'd.npz'}"
    for name in ("digits", "csv:list.csv", "s3://bucket/x.npz", "folder:s3://b/p/"):
        assert data_source(name) == name
    assert data_source(np.zeros((2, 8, 8), np.uint8)).startswith(f"npz:{cache}")
    with pytest.raises(DataError, match="no folder"):
        data_source(tmp_path / "missing")
    with pytest.raises(ConfigError, match="labels="):
        data_source("digits", labels=[0, 1])


def test_keyword_overrides_map_double_underscores_to_dots() -> None:
    items = set_items(
        {"refine.tol": 0.01, "dataset.k_range": "2:15"},
        pretrain__epochs=np.int64(20),
        pretrain__hidden_dims=(32, 64),
        device="yes",
    )
    assert items == [
        "refine.tol=0.01",
        "dataset.k_range='2:15'",
        "pretrain.epochs=20",
        "pretrain.hidden_dims=[32, 64]",
        "device='yes'",
    ]
    assert [(".".join(k), v) for k, v in map(parse_set, items)] == [  # --set reads them back
        ("refine.tol", 0.01),
        ("dataset.k_range", "2:15"),
        ("pretrain.epochs", 20),
        ("pretrain.hidden_dims", [32, 64]),
        ("device", "yes"),
    ]


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"method": "nope"}, "unknown method 'nope'"),
        ({"split": "nope"}, "invalid choice: 'nope'"),
        ({"seed": 1, "random_state": 2}, "differ"),
        ({"pretrain__epoch": 3}, "pretrain.epoch: unknown key"),
        ({"preset": "nope"}, "no preset 'nope' for aspc-da (its presets: digits, mnist"),
        ({"preset": "missing.yaml"}, "config file not found"),
    ],
)
def test_user_errors_raise_config_errors(
    kwargs: dict[str, Any], needle: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    method = kwargs.pop("method", "aspc-da")
    with pytest.raises(ConfigError, match=re.escape(needle)):
        dcflow.cluster(method, np.zeros((4, 8, 8), np.uint8), n_clusters=2, **kwargs)
    assert not (tmp_path / ".dcflow" / "runs").exists()


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[ClusterResult, DeepClusterer]:
    root = tmp_path_factory.mktemp("api")
    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    for var in ("MLFLOW_TRACKING_URI", "DCFLOW_WEIGHTS_STORE", "DCFLOW_CACHE_DIR"):
        mp.delenv(var, raising=False)
    x, y = _digits(300)
    try:
        result = dcflow.cluster("aspc-da", x, n_clusters=10, labels=y, overrides=SMOKE)
        model = DeepClusterer(method="aspc-da", n_clusters=10, overrides=SMOKE).fit(x, y)
    finally:
        mp.undo()
    return result, model


def test_cluster_returns_the_runs_arrays(fitted: tuple[ClusterResult, DeepClusterer]) -> None:
    result, _ = fitted
    assert result.labels.shape == (300,) and result.labels.dtype == np.int64
    assert result.n_clusters == 10 and 0 <= result.labels.min() <= result.labels.max() < 10
    assert result.proba is None  # ASPC-DA: nearest frozen centre, no probabilities
    assert result.embedding is not None and result.embedding.dtype == np.float32
    assert result.embedding.shape[0] == 300
    assert set(result.metrics) >= {"acc", "nmi", "ari"} and "silhouette" in result.internal
    assert re.fullmatch(r"[0-9a-f]{32}", result.run_id or "")
    assert (result.artifacts / "evaluate" / "out" / "run.json").is_file()
    predicted = np.loadtxt(
        result.artifacts / "evaluate" / "out" / "predictions.csv",
        delimiter=",",
        skiprows=1,
        usecols=2,
        dtype=np.int64,
    )
    assert np.array_equal(predicted, result.labels)
    assert "labels" not in repr(result) and "n_clusters=10" in repr(result)


def test_fit_sets_the_fitted_attributes(fitted: tuple[ClusterResult, DeepClusterer]) -> None:
    result, model = fitted
    assert model.labels_.shape == (300,) and model.n_clusters_ == 10
    assert model.n_features_in_ == 64 and model.proba_ is None
    assert model.embedding_ is not None and model.embedding_.shape[0] == 300
    assert model.run_dir_ != result.artifacts and model.run_id_ != result.run_id
    assert model.result_.metrics == {}  # y is ignored: unsupervised
    assert model.result_.summary["stages"]["pretrain"]["skipped"]  # same pixels: cached weights
    assert np.array_equal(model.labels_, result.labels)  # same seed, same weights


def test_predict_repeats_the_fit_without_training(
    fitted: tuple[ClusterResult, DeepClusterer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, model = fitted
    monkeypatch.setenv("DCFLOW_CACHE_DIR", str(tmp_path))
    x, _ = _digits(300)
    labels = model.predict(x)
    assert labels.dtype == np.int64 and labels.shape == (300,)
    assert (labels == model.labels_).mean() >= 0.99
    assert np.array_equal(model.predict(x[:7]), labels[:7])  # fewer images than clusters
    assert np.array_equal(model.predict(x[5:6]), labels[5:6])
    with pytest.raises(DataError, match="shape"):
        model.predict(np.zeros((3, 4, 4), np.uint8))


def test_not_fitted_and_params() -> None:
    model = DeepClusterer(method="aspc-da", overrides={"pretrain.epochs": 2})
    with pytest.raises(NotFittedError):
        model.predict(np.zeros((3, 8, 8), np.uint8))
    params = model.get_params()
    assert params == {
        "method": "aspc-da",
        "n_clusters": 10,
        "random_state": 0,
        "overrides": {"pretrain.epochs": 2},
        "dataset_options": None,
        "preset": None,
        "quiet": True,
    }
    assert model.set_params(n_clusters=5, random_state=3) is model
    assert model.get_params()["n_clusters"] == 5 and model.random_state == 3
    assert DeepClusterer(**model.get_params()).get_params() == model.get_params()


SKLEARN_CHECKS = [
    "check_parameters_default_constructible",
    "check_no_attributes_set_in_init",
    "check_get_params_invariance",
    "check_set_params",
    "check_do_not_raise_errors_in_init_or_set_params",
    "check_estimator_cloneable",
    "check_estimator_repr",
    "check_mixin_order",
    "check_estimator_tags_renamed",
    "check_valid_tag_types",
    "check_estimators_unfitted",
]


@pytest.mark.parametrize("check", SKLEARN_CHECKS)
def test_sklearn_checks_that_apply(check: str) -> None:
    """The checks that need no fit on tabular data (the docstring says why the others don't)."""
    if not hasattr(estimator_checks, check):
        pytest.skip(f"scikit-learn has no {check} in this version")
    getattr(estimator_checks, check)("DeepClusterer", DeepClusterer())


def test_sklearn_tags_say_images() -> None:
    if not hasattr(DeepClusterer(), "__sklearn_tags__"):
        pytest.skip("scikit-learn < 1.6")
    tags = DeepClusterer().__sklearn_tags__()
    assert tags.estimator_type == "clusterer" and not tags.input_tags.two_d_array
    assert tags.input_tags.three_d_array and tags.input_tags.positive_only


def _readme_block() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^## From Python\s*$(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert section, "README.md has no '## From Python' section"
    blocks = re.findall(r"^```python\s*\n(.*?)^```", section.group(1), re.M | re.S)
    assert len(blocks) == 1, "the From Python section holds one python block"
    return str(blocks[0])


def test_the_readme_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code = _readme_block()
    assert len(code.strip().splitlines()) <= 10
    monkeypatch.chdir(tmp_path)
    for var in ("MLFLOW_TRACKING_URI", "DCFLOW_WEIGHTS_STORE", "DCFLOW_CACHE_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DCFLOW_CONFIG_DIR", str(ROOT / "configs"))
    namespace: dict[str, Any] = {"__name__": "readme"}
    exec(compile(code, "README.md", "exec"), namespace)
    result, model = namespace["result"], namespace["model"]
    assert result.labels.shape == (1797,) and model.labels_.shape == (1500,)
    assert len(np.unique(result.labels)) >= 8  # a real clustering, not a collapse
    assert os.path.isdir(result.artifacts) and (tmp_path / ".dcflow" / "mlflow.db").is_file()
