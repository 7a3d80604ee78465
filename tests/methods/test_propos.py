"""ProPos and HaDis: networks, EMA, schedules, E-step, stage chain, and the local pipeline."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from dcflow import artifacts as art
from dcflow.cli import main
from dcflow.config import RunConfig, build_run_config
from dcflow.data import Dataset, load_dataset
from dcflow.errors import ConfigError
from dcflow.methods.base import StageContext
from dcflow.methods.hadis import HaDis
from dcflow.methods.propos import ProPos
from dcflow.models import load_state
from dcflow.models.propos_net import ProPosNet, ema_momentum, ema_update, learning_rate
from dcflow.registry import get_method
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


def _ctx(data: Dataset, out: Path, **kw: Any) -> StageContext:
    out.mkdir(parents=True, exist_ok=True)
    return StageContext(data=data, out=out, device=torch.device("cpu"), seed=0, **kw)


def _chain(method: ProPos, root: Path) -> tuple[dict[str, Path], dict[str, dict[str, float]]]:
    data = without_labels(load_dataset(method.run.dataset))
    d = {s: root / s for s in ("pretrain", "cluster-init", "refine")}
    m = {"pretrain": method.pretrain(_ctx(data, d["pretrain"], inputs={}))}
    w = d["pretrain"] / art.WEIGHTS
    m["cluster-init"] = method.cluster_init(_ctx(data, d["cluster-init"], inputs={}, weights=w))
    inputs = {"cluster-init": d["cluster-init"]}
    m["refine"] = method.refine(_ctx(data, d["refine"], inputs=inputs, weights=w))
    return d, m


@pytest.fixture(scope="module")
def hadis_chain(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Path], dict]:
    return _chain(HaDis(_config("hadis")), tmp_path_factory.mktemp("hadis"))


def test_hadis_chain_artifacts(hadis_chain: tuple[dict[str, Path], dict]) -> None:
    d, m = hadis_chain
    assert {"align_first", "hsd_first", "loss_last"} <= set(m["pretrain"])
    assert "psl_first" not in m["pretrain"]  # no PSL during the warm-up
    assert {"psl_last", "hsd_last", "changed_last"} <= set(m["refine"])
    labels = art.load_npy(d["refine"], art.LABELS)
    z = art.load_npy(d["refine"], art.EMBEDDINGS)
    proba = art.load_npy(d["refine"], art.PROBA)
    assert labels.shape == (300,) and labels.dtype == np.int64 and 0 <= labels.min()
    assert labels.max() < 10
    assert z.shape == (300, 16) and z.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1.0, atol=1e-5)
    assert proba.shape == (300, 10) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-5)
    assert np.array_equal(proba.argmax(1), labels)
    rows = (d["refine"] / art.HISTORY).read_text().splitlines()
    assert [json.loads(r)["epoch"] for r in rows] == [3, 4]


def test_warmup_weights_hold_networks_and_momentum(hadis_chain: tuple) -> None:
    d, _ = hadis_chain
    state = load_state(d["pretrain"] / art.WEIGHTS)
    assert any(k.startswith("net.target.") for k in state)
    assert any(k.startswith("net.predictor.") for k in state)
    assert not any(k.startswith("net.target_predictor") for k in state)
    assert any(k.startswith("optim.") for k in state)  # SGD momentum survives the stage split


def test_hooks_never_see_labels(hadis_chain: tuple) -> None:
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
    data = without_labels(load_dataset(_config("propos").dataset))
    return StageContext(data=data, inputs={}, out=Path("."), device=torch.device("cpu"), seed=0)


def test_merge_readout_replaces_only_the_final_labels(tmp_path: Path) -> None:
    d, _ = _chain(ProPos(_config("propos", ["kmeans.readout=merge"])), tmp_path)
    labels = art.load_npy(d["refine"], art.LABELS)
    proba = art.load_npy(d["refine"], art.PROBA)
    z, centres = art.load_npy(d["refine"], art.EMBEDDINGS), art.load_npy(d["refine"], art.CENTERS)
    assert np.array_equal(proba.argmax(1), labels)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-5)
    for c in np.unique(labels):  # CENTERS are the means of the merged clusters
        np.testing.assert_allclose(centres[c], z[labels == c].mean(0), atol=1e-5)
    # the E-step labels that drove training come from plain K-means (cluster-init unchanged)
    assert art.load_npy(d["cluster-init"], art.CENTERS).shape == (10, 16)


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
    ctx = StageContext(data=data, inputs={}, out=Path("."), device=torch.device("cpu"), seed=0)
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
