"""ProPos and HaDis: networks, EMA, schedules, E-step, stage chain, and the local pipeline."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from dcflow import artifacts as art
from dcflow.cli import main
from dcflow.clustering.merge import overcluster_merge
from dcflow.config import RunConfig, build_run_config
from dcflow.data import Dataset, load_dataset
from dcflow.errors import ConfigError, StageError, WeightsError
from dcflow.handoff import ClusterInitOut, PretrainOut, RefineOut
from dcflow.methods.base import StageContext
from dcflow.methods.hadis import HaDis
from dcflow.methods.propos import ProPos
from dcflow.methods.registry import get_method
from dcflow.models import load_state
from dcflow.models.propos_net import ProPosNet, ema_momentum, ema_update, learning_rate
from dcflow.stages.common import without_labels

pytestmark = pytest.mark.usefixtures("isolated_env")

TINY = [
    "model.backbone=mlp",
    "model.widths=[64]",
    "model.hidden=64",
    "model.dim=16",
    "augment.kind=affine",
    "augment.noise=0.05",
    "optim.batch_size=64",
    "train.epochs=4",
    "train.warmup_epochs=2",
    "train.ema=0.9",
    "kmeans.n_init=2",
]
DATASET = {"name": "digits", "limit": 300}


def _config(method: str, extra: list[str] | tuple[str, ...] = ()) -> RunConfig:
    cls = get_method(method)
    return build_run_config(
        method, cls.Config, DATASET, overrides=[*TINY, *extra], use_preset=False
    )


def _ctx(data: Dataset, **kw: Any) -> StageContext:
    return StageContext(data=data, device=torch.device("cpu"), seed=0, **kw)


@dataclass
class Chain:
    """The typed outputs of pretrain -> cluster-init -> refine and where the stages saved them."""

    dirs: dict[str, Path]
    pretrain: PretrainOut
    init: ClusterInitOut
    refine: RefineOut


def _chain(method: ProPos, root: Path) -> Chain:
    """Call the hooks as the stage files do: save each output, load it back for the next hook."""
    data = without_labels(load_dataset(method.run.dataset))
    d = {s: root / s for s in ("pretrain", "cluster-init", "refine")}
    pre = method.pretrain(_ctx(data))
    pre.save(d["pretrain"])
    w = d["pretrain"] / art.WEIGHTS
    init = method.cluster_init(_ctx(data, weights=w))
    init.save(d["cluster-init"])
    ref = method.refine(_ctx(data, weights=w), ClusterInitOut.load(d["cluster-init"]), None)
    ref.save(d["refine"])
    return Chain(d, pre, init, ref)


@pytest.fixture(scope="module")
def hadis_chain(tmp_path_factory: pytest.TempPathFactory) -> Chain:
    return _chain(HaDis(_config("hadis")), tmp_path_factory.mktemp("hadis"))


def test_hadis_chain_artifacts(hadis_chain: Chain) -> None:
    c = hadis_chain
    assert {"align_first", "hsd_first", "loss_last"} <= set(c.pretrain.metrics)
    assert "psl_first" not in c.pretrain.metrics  # no PSL during the warm-up
    assert {"psl_last", "hsd_last", "changed_last"} <= set(c.refine.metrics)
    assert c.refine.model is not None and c.refine.history is not None
    assert [row["epoch"] for row in c.refine.history] == [3, 4]
    saved = RefineOut.load(c.dirs["refine"])  # what the stage file wrote
    labels, z, proba = saved.labels, saved.embeddings, saved.proba
    assert labels.shape == (300,) and labels.dtype == np.int64 and 0 <= labels.min()
    assert labels.max() < 10
    assert np.array_equal(labels, c.refine.labels.numpy())
    assert z.shape == (300, 16) and z.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1.0, atol=1e-5)
    assert proba.shape == (300, 10) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-5)
    assert np.array_equal(proba.argmax(1), labels)
    assert [row["epoch"] for row in saved.history or []] == [3, 4]
    assert set(saved.model or {}) == set(c.refine.model)


def test_warmup_weights_hold_networks_and_momentum(hadis_chain: Chain) -> None:
    returned = hadis_chain.pretrain.weights
    state = load_state(hadis_chain.dirs["pretrain"] / art.WEIGHTS)  # weights_only=True
    assert set(state) == set(returned)
    assert all(torch.equal(state[k], returned[k]) for k in state)
    assert any(k.startswith("net.target.") for k in state)
    assert any(k.startswith("net.predictor.") for k in state)
    assert not any(k.startswith("net.target_predictor") for k in state)
    assert any(k.startswith("optim.") for k in state)  # SGD momentum survives the stage split


def test_cluster_init_is_the_first_estep(hadis_chain: Chain) -> None:
    init = hadis_chain.init
    assert init.centers is not None and init.embeddings is not None
    assert tuple(init.centers.shape) == (10, 16) and tuple(init.embeddings.shape) == (300, 16)
    saved = ClusterInitOut.load(hadis_chain.dirs["cluster-init"])
    assert saved.labels.dtype == np.int64 and np.array_equal(saved.labels, init.labels.numpy())
    assert {"inertia", "empty_clusters"} <= set(init.metrics)


def test_wrong_weights_are_one_line_weights_errors(tmp_path: Path) -> None:
    method = ProPos(_config("propos"))
    data = without_labels(load_dataset(method.run.dataset))
    torch.save({"net.online.x": torch.zeros(1)}, tmp_path / "w.pt")
    with pytest.raises(WeightsError, match="do not fit"):
        method.cluster_init(_ctx(data, weights=tmp_path / "w.pt"))
    with pytest.raises(WeightsError, match="warm-up weights"):
        method.cluster_init(_ctx(data))


def test_hooks_never_see_labels(hadis_chain: Chain) -> None:
    data = without_labels(load_dataset(_config("hadis").dataset))
    assert data.y is None  # the chain above ran on exactly this


def test_predictor_has_no_target_copy_and_ema_edge_cases() -> None:
    net = ProPosNet("mlp", (1, 8, 8), [32], 16, 8)
    n_online = sum(p.numel() for p in net.online.parameters())
    assert sum(p.numel() for p in net.target.parameters()) == n_online
    assert all(not p.requires_grad for p in net.target.parameters())
    with torch.no_grad():
        for p in net.online.parameters():
            p.add_(1.0)
    before = [p.clone() for p in net.target.parameters()]
    pred_before = [p.clone() for p in net.predictor.parameters()]
    net.ema_update(1.0)
    assert all(torch.equal(a, b) for a, b in zip(before, net.target.parameters(), strict=True))
    net.ema_update(0.0)
    pairs = zip(net.online.parameters(), net.target.parameters(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)
    assert all(
        torch.equal(a, b) for a, b in zip(pred_before, net.predictor.parameters(), strict=True)
    )


def test_ema_half_way() -> None:
    a, b = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    expect = [
        0.25 * pa.detach() + 0.75 * pb.detach()
        for pa, pb in zip(a.parameters(), b.parameters(), strict=True)
    ]
    ema_update(a, b, 0.25)
    for got, want in zip(a.parameters(), expect, strict=True):
        torch.testing.assert_close(got.detach(), want)


def test_learning_rate_schedule() -> None:
    base, w, e = 0.1, 5, 50
    lrs = [learning_rate(i / 10, base, w, e) for i in range(0, 50)]
    assert lrs[0] == 0.0 and all(b > a for a, b in zip(lrs, lrs[1:], strict=False))
    assert learning_rate(w, base, w, e) == pytest.approx(base)
    end = learning_rate(e, base, w, e)  # cosine over E, not E - W (pitfall 3)
    assert end == pytest.approx(base * (1 + math.cos(math.pi * (e - w) / e)) / 2)
    assert end > 0
    assert learning_rate(e, base, w, e, eta_min=0.1) > end


def test_ema_momentum_schedule() -> None:
    assert ema_momentum(7, 100, 0.996, increase=False) == 0.996
    ms = [ema_momentum(t, 100, 0.996, increase=True) for t in range(101)]
    assert ms[0] == pytest.approx(0.996) and ms[-1] == 1.0
    assert all(b >= a for a, b in zip(ms, ms[1:], strict=False))


def test_phase_and_predictor_lr_factor() -> None:
    method = ProPos(_config("propos", ["train.sigma=0.01"]))
    assert method.phase(1) == (0.0, False) and method.phase(2) == (0.0, False)
    assert method.phase(3) == (0.01, True)
    net = method._net(_ctx_like())
    opt = method._optimizer(net)
    assert [g["lr_factor"] for g in opt.param_groups] == [1.0, 10.0]


def _ctx_like() -> StageContext:
    return _ctx(without_labels(load_dataset(_config("propos").dataset)))


def test_merge_readout_replaces_only_the_final_labels(tmp_path: Path) -> None:
    c = _chain(ProPos(_config("propos", ["kmeans.readout=merge"])), tmp_path)
    saved = RefineOut.load(c.dirs["refine"])
    labels, proba, z, centres = saved.labels, saved.proba, saved.embeddings, saved.centers
    assert np.array_equal(proba.argmax(1), labels)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-5)
    for k in np.unique(labels):  # CENTERS are the means of the merged clusters
        np.testing.assert_allclose(centres[k], z[labels == k].mean(0), atol=1e-5)
    # the E-step labels that drove training come from plain K-means (cluster-init unchanged)
    assert ClusterInitOut.load(c.dirs["cluster-init"]).centers.shape == (10, 16)
    # the read-out keeps what predict needs: fine centres, their variance, fine -> cluster map
    fine = saved.readout
    assert fine is not None and fine["centers"].shape[0] == fine["groups"].shape[0] >= 10
    merged = overcluster_merge(torch.from_numpy(z), 10, ProPos(_config("propos")).cfg.kmeans.merge)
    assert np.array_equal(merged.proba.numpy(), proba)  # merge_readout is overcluster_merge
    _assert_predict_reproduces(ProPos(_config("propos", ["kmeans.readout=merge"])), c.dirs)


def _assert_predict_reproduces(method: ProPos, dirs: dict[str, Path]) -> None:
    """predict on the pool gives the run's labels (and embeddings), rows independent."""
    saved, init = RefineOut.load(dirs["refine"]), ClusterInitOut.load(dirs["cluster-init"])
    data = without_labels(load_dataset(method.run.dataset))
    pred = method.predict(_ctx(data), init, saved)  # no warm-up weights: the refined networks
    assert np.array_equal(pred.labels.numpy(), saved.labels)
    assert np.array_equal(pred.embeddings.numpy(), saved.embeddings)
    np.testing.assert_allclose(pred.proba.numpy(), saved.proba, atol=1e-6)
    sub = Dataset(data.name, data.x[:40], None, data.index[:40], data.n_clusters)
    assert np.array_equal(method.predict(_ctx(sub), init, saved).labels.numpy(), saved.labels[:40])


def test_predict_is_the_nearest_final_centre(hadis_chain: Chain) -> None:
    saved = RefineOut.load(hadis_chain.dirs["refine"])
    assert saved.readout is not None and np.array_equal(saved.readout["centers"], saved.centers)
    _assert_predict_reproduces(HaDis(_config("hadis")), hadis_chain.dirs)
    with pytest.raises(StageError, match="readout"):
        HaDis(_config("hadis")).predict(_ctx_like(), hadis_chain.init, None)


def test_estep_is_deterministic() -> None:
    method, ctx = ProPos(_config("propos")), _ctx_like()
    torch.manual_seed(0)
    net = method._net(ctx)
    z1, km1 = method._estep(ctx, net)
    z2, km2 = method._estep(ctx, net)
    assert torch.equal(z1, z2) and torch.equal(km1.labels_, km2.labels_)
    assert z1.shape == (300, 16)


def test_alignment_goes_down_in_a_few_steps() -> None:
    method, ctx = ProPos(_config("propos")), _ctx_like()
    torch.manual_seed(0)
    net, gen = method._net(ctx), torch.Generator().manual_seed(0)
    opt = method._optimizer(net)
    first = method._train_epoch(ctx, net, opt, 1, None, gen)["align"]
    later = [method._train_epoch(ctx, net, opt, e, None, gen)["align"] for e in (2, 3)]
    assert max(later) < first - 0.1


def test_bad_configs_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="warmup_epochs"):
        _config("propos", ["train.warmup_epochs=4"])
    with pytest.raises(ConfigError, match="hsd"):
        _config("propos", ["hsd.weight=1"])  # HSD is HaDis-only


def test_cifar_resnet_runs_a_few_steps_on_fake_data() -> None:
    from dcflow.data.base import Dataset as DS

    cfg = build_run_config(
        "hadis",
        HaDis.Config,
        {"name": "digits"},
        overrides=[
            "model.hidden=64",
            "model.dim=32",
            "optim.batch_size=8",
            "train.epochs=2",
            "train.warmup_epochs=1",
        ],
        use_preset=False,
    )
    method = HaDis(cfg)
    rng = np.random.default_rng(0)
    x = rng.random((16, 3, 32, 32), dtype=np.float32)
    data = DS("fake-cifar", x, None, np.arange(16), 10)
    ctx = _ctx(data)
    torch.manual_seed(0)
    net = method._net(ctx)
    assert method.cfg.model.backbone == "resnet18" and method.cfg.augment.kind == "simclr"
    opt, gen = method._optimizer(net), torch.Generator().manual_seed(0)
    row = method._train_epoch(ctx, net, opt, 2, torch.arange(16) % 10, gen)
    assert {"align", "psl", "hsd"} <= set(row) and all(np.isfinite(list(row.values())))
    z, km = method._estep(ctx, net)
    assert z.shape == (16, 32) and km.labels_.shape == (16,)


@pytest.mark.parametrize("method", ["propos", "hadis"])
def test_local_pipeline_end_to_end(
    method: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    sets = [a for s in [*TINY, "dataset.limit=300", "threads=1"] for a in ("--set", s)]
    assert main(["run", method, *sets, "--json", "s.json", "--quiet"]) == 0
    summary = json.loads((tmp_path / "s.json").read_text())
    stages = ["download-weights", "pretrain", "cluster-init", "refine", "evaluate"]
    assert list(summary["stages"]) == stages
    assert {"acc", "nmi", "ari", "ece"} <= set(summary["metrics"])
    assert summary["metrics"]["acc"] > 0.3  # 10 classes: chance is about 0.1
