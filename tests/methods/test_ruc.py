"""RUC: selection and refine invariants on a digits subset, weights shared with scan, pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _ruc_family import cli_args, config, ctx, predict_rows, run_chain

from dcflow.clustering.metrics import cluster_acc
from dcflow.data import load_dataset
from dcflow.errors import StageError, WeightsError
from dcflow.handoff import ClusterInitOut, RefineOut, SelectionOut
from dcflow.methods.registry import get_method
from dcflow.stages.common import without_labels

pytestmark = pytest.mark.usefixtures("isolated_env")


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, np.ndarray]:
    root = tmp_path_factory.mktemp("ruc")
    cfg = config("ruc", ["ruc.tau2=0.2"])  # low enough that refurbishing happens in 2 epochs
    _, data, outs = run_chain(cfg, root)
    assert data.y is not None
    return root, outs, data.y


def test_cluster_init_hands_on_projections_and_the_self_labelled_model(
    chain: tuple[Path, dict, np.ndarray],
) -> None:
    root, outs, _ = chain
    init = ClusterInitOut.load(root / "cluster-init")
    assert init.embeddings.shape == (300, 64)  # SimCLR projections (RUC's e_model space)
    assert np.allclose(np.linalg.norm(init.embeddings, axis=1), 1, atol=1e-5)
    assert init.neighbors.shape == (300, 11) and init.model["cluster_head.0.weight"].shape[0] == 10
    assert (init.labels == init.proba.argmax(1)).all()
    metrics = outs["cluster-init"].metrics
    assert 0 < metrics["scan_mean_confidence"] <= 1 and "selflabel_fallback" in metrics


def test_selection_artifact(chain: tuple[Path, dict, np.ndarray]) -> None:
    root, outs, y = chain
    sel = SelectionOut.load(root / "confident-sample-selection").selected
    clean, conf, metric = sel["clean"], sel["conf_mask"], sel["metric_mask"]
    assert clean.dtype == bool and clean.shape == (300,)
    assert conf.dtype == bool and metric.dtype == bool
    assert sel["knn_label"].dtype == np.int64 and sel["confidence"].dtype == np.float32
    assert sel["threshold"].dtype == np.float32 and sel["t"].dtype == np.int64
    assert (sel.indices == np.flatnonzero(clean)).all() and sel.indices.dtype == np.int64
    assert (sel["weights"] == clean.astype(np.float32)).all()
    assert (clean == (conf & metric)).all()
    assert (conf == (sel["confidence"] >= 0.5)).all()  # tau1 of the tiny settings
    assert outs["confident-sample-selection"].metrics["n_clean"] == clean.sum()
    init = ClusterInitOut.load(root / "cluster-init")
    assert (sel["pseudo_labels"] == init.labels).all()  # raw cluster ids, no renaming
    pseudo = sel["pseudo_labels"]
    if 0 < clean.sum() < 300:  # the clean set is purer than the pool (oracle, test only)
        assert cluster_acc(y[clean], pseudo[clean]) >= cluster_acc(y, pseudo) - 0.02


def test_refine_invariants(chain: tuple[Path, dict, np.ndarray]) -> None:
    root, outs, _ = chain
    start = SelectionOut.load(root / "confident-sample-selection").selected
    refined = RefineOut.load(root / "refine")
    assert refined.selected is not None and refined.history is not None
    final = refined.selected
    assert final["clean"].dtype == bool and final["t"] == 3
    assert (final.indices == np.flatnonzero(final["clean"])).all()
    assert (final["clean"] >= start["clean"]).all()  # the clean set never shrinks
    refurbished = final["clean"] & ~start["clean"]
    changed = final["pseudo_labels"] != start["pseudo_labels"]
    assert not (changed & ~refurbished).any()  # labels move only on refurbished samples
    assert outs["refine"].metrics["refurbished"] == refurbished.sum() > 0
    history = refined.history
    assert history == outs["refine"].history and len(history) == 3
    fractions = [row["clean_fraction"] for row in history]
    assert fractions == sorted(fractions)
    proba, labels = refined.proba, refined.labels
    assert proba.shape == (300, 10) and np.allclose(proba.sum(1), 1, atol=1e-5)
    assert labels.dtype == np.int64 and labels.min() >= 0 and labels.max() < 10
    assert np.isfinite([v for row in history for v in row.values()]).all()
    prefixes = {k.split(".", 1)[0] for k in refined.model}
    assert prefixes == {"net1", "net2"}  # both co-trained networks in one state dict
    assert "net2.cluster_head.0.weight" in refined.model


def test_predict_is_the_two_network_ensemble(chain: tuple[Path, dict, np.ndarray]) -> None:
    """Both saved networks: the run's ensemble labels and proba, row by row on other rows."""
    root, _, _ = chain
    cfg = config("ruc", ["ruc.tau2=0.2"])
    refined = RefineOut.load(root / "refine")
    out = predict_rows(cfg, root)
    assert np.array_equal(out.labels.cpu().numpy(), refined.labels)
    np.testing.assert_allclose(out.proba.cpu().numpy(), refined.proba, atol=1e-6)
    np.testing.assert_allclose(out.embeddings.cpu().numpy(), refined.embeddings, atol=1e-5)
    rows = np.arange(1, 300, 7)[::-1]
    part = predict_rows(cfg, root, rows, n_clusters=3)  # K comes from the saved heads
    np.testing.assert_allclose(part.proba.cpu().numpy(), refined.proba[rows], atol=1e-5)
    assert (part.labels.cpu().numpy() == refined.labels[rows]).mean() >= 0.99
    one = RefineOut.load(root / "refine")
    one.model = {k: v for k, v in refined.model.items() if k.startswith("net1.")}
    data = without_labels(load_dataset(cfg.dataset))
    init = ClusterInitOut.load(root / "cluster-init")
    with pytest.raises(WeightsError, match="refined network 2"):
        get_method("ruc")(cfg).predict(ctx(data), init, one)


def test_selection_is_deterministic(chain: tuple[Path, dict, np.ndarray]) -> None:
    root, _, _ = chain
    cfg = config("ruc")
    method = get_method("ruc")(cfg)
    data = without_labels(load_dataset(cfg.dataset))
    again = method.select(ctx(data), ClusterInitOut.load(root / "cluster-init")).selected
    saved = SelectionOut.load(root / "confident-sample-selection").selected
    assert np.array_equal(again.indices, saved.indices)
    assert again.extras.keys() == saved.extras.keys()
    assert all(np.array_equal(again[k], saved[k]) for k in saved.extras)
    assert all(np.asarray(again[k]).dtype == saved[k].dtype for k in saved.extras)


def test_refine_needs_the_selection(chain: tuple[Path, dict, np.ndarray]) -> None:
    root, _, _ = chain
    cfg = config("ruc")
    data = without_labels(load_dataset(cfg.dataset))
    with pytest.raises(StageError, match="selection"):
        get_method("ruc")(cfg).refine(ctx(data), ClusterInitOut.load(root / "cluster-init"), None)


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
