"""SCAN: hooks on a digits subset, model selection, self-label guards, presets, local pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from _ruc_family import cli_args, config, ctx, predict_rows, preset, run_chain

from dcflow import artifacts as art
from dcflow.cli import main
from dcflow.config import build_run_config
from dcflow.data import load_dataset
from dcflow.errors import WeightsError
from dcflow.handoff import ClusterInitOut, RefineOut
from dcflow.methods.registry import get_method
from dcflow.models.cluster import ModelConfig, build_model
from dcflow.models.state import load_state
from dcflow.progress import Curves
from dcflow.stages.common import without_labels
from dcflow.train import scan as scan_train_mod
from dcflow.train.scan import ScanConfig, scan_train
from dcflow.train.selflabel import SelfLabelConfig, selflabel_train
from dcflow.train.simclr import SimCLRConfig, simclr_train
from dcflow.transforms.views import ViewConfig

pytestmark = pytest.mark.usefixtures("isolated_env")


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("scan")
    _, _, outs = run_chain(config("scan"), root)
    return root, outs


def test_artifacts_contract(chain: tuple[Path, dict]) -> None:
    root, outs = chain
    init = ClusterInitOut.load(root / "cluster-init")
    nbrs = init.neighbors
    assert nbrs.shape == (300, 11) and nbrs.dtype == np.int64
    assert (nbrs[:, 0] == np.arange(300)).all()
    assert init.fragment_groups is None  # no over-clustering: no fragment_groups.npy
    refined = RefineOut.load(root / "refine")
    for stage, out in (("cluster-init", init), ("refine", refined)):
        proba, labels = out.proba, out.labels
        assert proba.shape == (300, 10) and np.allclose(proba.sum(1), 1, atol=1e-5)
        assert labels.dtype == np.int64 and (labels == proba.argmax(1)).all()
        assert out.embeddings.shape[0] == 300
        assert {k for k in out.model if k.startswith("cluster_head.")} == {
            "cluster_head.0.weight",
            "cluster_head.0.bias",
        }
        returned = outs[stage]  # what the hook returned is what the stage saved
        assert torch.equal(returned.labels.cpu(), torch.from_numpy(labels))
        assert all(torch.equal(v, out.model[k]) for k, v in returned.model.items())
        assert out.metrics == {} and 0 < returned.metrics["mean_confidence"] <= 1
    assert outs["cluster-init"].metrics["scan_best_head"] in (0.0, 1.0)
    weights = load_state(root / "pretrain" / art.WEIGHTS)
    assert "contrastive_head.0.weight" in weights and "mean" in weights
    assert outs["pretrain"].weights.keys() == weights.keys()


def test_predict_reproduces_the_refined_assignment(chain: tuple[Path, dict]) -> None:
    """Fitted pool: the run's labels and proba; any other row set: the same rows' values."""
    root, _ = chain
    refined = RefineOut.load(root / "refine")
    out = predict_rows(config("scan"), root)
    assert np.array_equal(out.labels.cpu().numpy(), refined.labels)
    np.testing.assert_allclose(out.proba.cpu().numpy(), refined.proba, atol=1e-6)
    np.testing.assert_allclose(out.embeddings.cpu().numpy(), refined.embeddings, atol=1e-5)
    rows = np.arange(299, -1, -3)  # other rows, other order, other batch: per-image inference
    part = predict_rows(config("scan"), root, rows, n_clusters=4)  # K comes from the saved head
    np.testing.assert_allclose(part.proba.cpu().numpy(), refined.proba[rows], atol=1e-5)
    assert (part.labels.cpu().numpy() == refined.labels[rows]).mean() >= 0.99
    assert 0 < part.metrics["mean_confidence"] <= 1


def test_predict_needs_the_refined_model(chain: tuple[Path, dict]) -> None:
    root, _ = chain
    method = get_method("scan")(config("scan"))
    data = without_labels(load_dataset(config("scan").dataset))
    init = ClusterInitOut.load(root / "cluster-init")
    with pytest.raises(WeightsError, match="refined model"):
        method.predict(ctx(data), init, None)


def test_refine_rejects_a_cluster_init_model_that_does_not_fit(chain: tuple[Path, dict]) -> None:
    root, _ = chain
    method = get_method("scan")(config("scan"))
    data = without_labels(load_dataset(config("scan").dataset))
    init = ClusterInitOut.load(root / "cluster-init")
    init.model = {k: v for k, v in init.model.items() if "cluster_head" not in k}
    with pytest.raises(WeightsError, match="does not fit"):
        method.refine(ctx(data), init, None)
    init.model = None
    with pytest.raises(WeightsError, match="cluster-init model"):
        method.refine(ctx(data), init, None)


def test_overcluster_trains_more_clusters_and_hands_on_a_k_way_model(tmp_path: Path) -> None:
    _, _, outs = run_chain(config("scan", ["scan.overcluster=2"]), tmp_path)
    init = ClusterInitOut.load(tmp_path / "cluster-init")
    groups = init.fragment_groups
    assert groups.shape == (20,) and groups.dtype == np.int64
    assert set(groups.tolist()) <= set(range(10))
    metrics = outs["cluster-init"].metrics
    assert metrics["overcluster_fragments"] == 20.0
    assert 0.5 < metrics["overcluster_head_agreement"] <= 1.0
    for out in (init, RefineOut.load(tmp_path / "refine")):
        assert out.proba.shape == (300, 10)
        assert out.model["cluster_head.0.weight"].shape[0] == 10
    predicted = predict_rows(config("scan", ["scan.overcluster=2"]), tmp_path)
    assert np.array_equal(
        predicted.labels.cpu().numpy(), RefineOut.load(tmp_path / "refine").labels
    )


def test_model_selection_keeps_the_argmin(monkeypatch: pytest.MonkeyPatch) -> None:
    history = iter([torch.tensor([0.5, 0.2]), torch.tensor([0.1, 0.3]), torch.tensor([0.4, 0.0])])
    monkeypatch.setattr(scan_train_mod, "validation_loss", lambda *a, **k: next(history))
    model = build_model(ModelConfig(backbone="small_cnn", widths=[4]), (1, 8, 8), 3, 2)
    x = torch.rand(20, 1, 8, 8)
    nbrs = torch.stack([torch.arange(20), (torch.arange(20) + 1) % 20], 1)
    cfg = ScanConfig(epochs=3, heads=2, batch_size=10, view=ViewConfig())
    m = scan_train(model, x, nbrs, cfg, torch.Generator().manual_seed(0), Curves())
    assert (m["scan_best_epoch"], m["scan_best_head"]) == (3.0, 1.0)
    assert len(model.cluster_head) == 1


def test_simclr_loss_goes_down() -> None:
    cfg_run = build_run_config("scan", get_method("scan").Config, {"name": "fake"})
    x = torch.from_numpy(load_dataset(cfg_run.dataset).float_images())
    model = build_model(ModelConfig(backbone="small_cnn", widths=[8, 16]), (1, 8, 8), 3, 0)
    cfg = SimCLRConfig(epochs=6, batch_size=100, optimizer="adam", lr=3e-3, temperature=0.5)
    m = simclr_train(model, x, cfg, torch.Generator().manual_seed(0), Curves())
    assert m["simclr_loss_last"] < m["simclr_loss_first"]


def test_selflabel_skips_batches_without_confident_samples() -> None:
    model = build_model(ModelConfig(backbone="small_cnn", widths=[4]), (1, 8, 8), 3, 1)
    before = {k: v.clone() for k, v in model.state_dict().items() if "head" in k}
    cfg = SelfLabelConfig(epochs=2, batch_size=8, threshold=0.999, drop_last=False)
    m = selflabel_train(model, torch.rand(20, 1, 8, 8), cfg, torch.Generator(), Curves())
    assert m["selflabel_skipped_batches"] == 6.0 and m["confident_fraction"] == 0.0
    after = model.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in before.items())


@pytest.mark.parametrize("name", ["cifar10", "cifar20", "stl10"])
def test_gpu_presets_build_and_run_a_few_steps(name: str, tmp_path: Path) -> None:
    """Paper presets: the ResNet-18 model and every stage for one short epoch on fake data."""
    k = 20 if name == "cifar20" else 10
    short = [
        "simclr.epochs=1", "simclr.batch_size=32", "scan.epochs=1", "scan.batch_size=32",
        "selflabel.epochs=1", "selflabel.batch_size=32", "ruc.epochs=1", "ruc.batch_size=32",
        "model.width=8",
    ]  # fmt: skip
    cfg = build_run_config(
        "ruc",
        get_method("ruc").Config,
        {"name": "fake", "limit": 48, "n_clusters": k},
        config_file=str(preset("ruc", name)),
        overrides=short,
        use_preset=False,
    )
    assert cfg.params["model"]["backbone"] == "resnet18"
    method, _, outs = run_chain(cfg, tmp_path)
    assert np.isfinite(outs["refine"].metrics["mean_confidence"])
    full = build_model(method.cfg.model.model_copy(update={"width": 64}), (3, 32, 32), k, 1)
    assert full(torch.rand(2, 3, 32, 32)).shape == (1, 2, k)
    assert full.feat_dim == 512


def test_local_pipeline_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main([*cli_args("scan"), "--json", "out.json"]) == 0
    out = json.loads((tmp_path / "out.json").read_text())
    assert list(out["stages"]) == [*get_method("scan").stages]
    assert {"acc", "nmi", "ari", "ece", "mean_confidence"} <= set(out["metrics"])
    assert out["metrics"]["acc"] > 0.35  # far above chance (about 0.12 on 300 images)
