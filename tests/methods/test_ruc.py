"""RUC: selection and refine invariants on a digits subset, weights shared with scan, pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _ruc_family import cli_args, config, ctx, run_chain

from dcflow import artifacts as art
from dcflow.clustering.metrics import cluster_acc
from dcflow.data import load_dataset
from dcflow.registry import get_method
from dcflow.stages.common import without_labels

pytestmark = pytest.mark.usefixtures("isolated_env")


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, np.ndarray]:
    root = tmp_path_factory.mktemp("ruc")
    cfg = config("ruc", ["ruc.tau2=0.2"])  # low enough that refurbishing happens in 2 epochs
    _, data, metrics = run_chain(cfg, root)
    assert data.y is not None
    return root, metrics, data.y


def test_selection_artifact(chain: tuple[Path, dict, np.ndarray]) -> None:
    root, metrics, y = chain
    sel = art.load_npz(root / "confident-sample-selection", art.SELECTED)
    clean, conf, metric = sel["clean"], sel["conf_mask"], sel["metric_mask"]
    assert clean.dtype == bool and clean.shape == (300,)
    assert (clean == (conf & metric)).all()
    assert (conf == (sel["confidence"] >= 0.5)).all()  # tau1 of the tiny settings
    assert metrics["confident-sample-selection"]["n_clean"] == clean.sum()
    init = art.load_npy(root / "cluster-init", art.LABELS)
    assert (sel["pseudo_labels"] == init).all()  # raw cluster ids, no renaming
    pseudo = sel["pseudo_labels"]
    if 0 < clean.sum() < 300:  # the clean set is purer than the pool (oracle, test only)
        assert cluster_acc(y[clean], pseudo[clean]) >= cluster_acc(y, pseudo) - 0.02


def test_refine_invariants(chain: tuple[Path, dict, np.ndarray]) -> None:
    root, metrics, _ = chain
    start = art.load_npz(root / "confident-sample-selection", art.SELECTED)
    final = art.load_npz(root / "refine", art.SELECTED)
    assert (final["clean"] >= start["clean"]).all()  # the clean set never shrinks
    refurbished = final["clean"] & ~start["clean"]
    changed = final["pseudo_labels"] != start["pseudo_labels"]
    assert not (changed & ~refurbished).any()  # labels move only on refurbished samples
    assert metrics["refine"]["refurbished"] == refurbished.sum() > 0
    history = [
        json.loads(line) for line in (root / "refine" / art.HISTORY).read_text().splitlines()
    ]
    fractions = [row["clean_fraction"] for row in history]
    assert fractions == sorted(fractions)
    proba = art.load_npy(root / "refine", art.PROBA)
    labels = art.load_npy(root / "refine", art.LABELS)
    assert proba.shape == (300, 10) and np.allclose(proba.sum(1), 1, atol=1e-5)
    assert labels.dtype == np.int64 and labels.min() >= 0 and labels.max() < 10
    assert np.isfinite([v for row in history for v in row.values()]).all()


def test_selection_is_deterministic(chain: tuple[Path, dict, np.ndarray], tmp_path: Path) -> None:
    root, _, _ = chain
    cfg = config("ruc")
    method = get_method("ruc")(cfg)
    data = without_labels(load_dataset(cfg.dataset))
    c = ctx(data, tmp_path, "confident-sample-selection")
    c.inputs["cluster-init"] = root / "cluster-init"
    method.select(c)
    a = art.load_npz(root / "confident-sample-selection", art.SELECTED)
    b = art.load_npz(tmp_path / "confident-sample-selection", art.SELECTED)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_scan_and_ruc_presets_share_the_simclr_cache_key() -> None:
    from dcflow.config import build_run_config

    for dataset in ("digits", "usps", "mnist", "cifar10", "cifar20", "stl10"):
        keys = []
        for name in ("scan", "ruc"):
            cls = get_method(name)
            run = build_run_config(
                name, cls.Config, {"name": dataset}, config_file=str(_preset(name, dataset)),
                use_preset=False,
            )  # fmt: skip
            keys.append(cls(run).pretrain_config())
        assert keys[0] == keys[1], dataset
    assert get_method("ruc").weights_name() == "scan"


def _preset(method: str, dataset: str) -> Path:
    return Path(__file__).resolve().parents[2] / "configs" / method / f"{dataset}.yaml"


def test_local_pipeline_reuses_scan_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """scan then ruc through kfp.local: ruc finds scan's SimCLR weights and skips pretrain."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DCFLOW_WEIGHTS_STORE", str(tmp_path / "store"))
    assert main_run([*cli_args("scan"), "--json", "scan.json"]) == 0
    assert main_run([*cli_args("ruc"), "--json", "ruc.json"]) == 0
    out = json.loads((tmp_path / "ruc.json").read_text())
    assert list(out["stages"]) == [
        "download-weights", "pretrain", "cluster-init", "confident-sample-selection", "refine",
        "evaluate",
    ]  # fmt: skip
    assert out["stages"]["pretrain"]["skipped"] is True
    assert {"acc", "nmi", "ari", "ece", "mean_confidence"} <= set(out["metrics"])
    assert out["stages"]["cluster-init"]["metrics"]["acc"] > 0.35  # chance is about 0.12
    assert out["metrics"]["acc"] > 0.2  # three RUC epochs with fresh heads


def main_run(args: list[str]) -> int:
    from dcflow.cli import main

    return main(args)
