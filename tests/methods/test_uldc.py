"""CC and ULDC hooks on a digits subset: artifacts, frozen cluster head, no labels in refine."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from dcflow import artifacts as art
from dcflow.clustering.merge import overcluster_merge
from dcflow.config import RunConfig, build_run_config
from dcflow.data import Dataset, load_dataset
from dcflow.errors import ConfigError, StageError, WeightsError
from dcflow.handoff import ClusterInitOut, PretrainOut, RefineOut
from dcflow.methods.base import StageContext
from dcflow.methods.registry import get_method
from dcflow.methods.uldc import ULDC
from dcflow.models import load_state
from dcflow.stages.common import weights_key, without_labels

pytestmark = pytest.mark.usefixtures("isolated_env")

SHARED = [
    "model.arch=mlp",
    "model.widths=[32]",
    "model.image_size=null",
    "model.instance_dim=16",
    "model.head_hidden=32",
    "augment.crop_area=null",
    "augment.rotation=10",
    "augment.shift=0.1",
    "augment.jitter=0",
    "augment.grayscale_p=0",
    "augment.hflip=0",
    "pretrain.epochs=3",
    "pretrain.batch_size=64",
    "pretrain.lr=0.003",
]
REFINE = ["refine.epochs=2", "refine.batch_size=64", "refine.lr=0.001", "refine.k_unc=8"]
DATASET = {"name": "digits", "limit": 300}


def _config(method: str, extra: list[str] | tuple[str, ...] = ()) -> RunConfig:
    over = [*SHARED, *(REFINE if method == "uldc" else []), *extra]
    cls = get_method(method)
    return build_run_config(method, cls.Config, DATASET, overrides=over, use_preset=False)


def _ctx(data: Dataset, **kw: Any) -> StageContext:
    return StageContext(data=data, device=torch.device("cpu"), seed=0, **kw)


@dataclass
class Run:
    dirs: dict[str, Path]
    pretrain: PretrainOut
    init: ClusterInitOut
    refine: RefineOut


def run_chain(root: Path, extra: list[str] | tuple[str, ...] = ()) -> Run:
    """Call the hooks as the stage files do: save each output, load it back for the next hook."""
    method = ULDC(_config("uldc", extra))
    data = without_labels(load_dataset(method.run.dataset))
    d = {s: root / s for s in ("pretrain", "cluster-init", "refine")}
    pre = method.pretrain(_ctx(data))
    pre.save(d["pretrain"])
    w = d["pretrain"] / art.WEIGHTS
    init = method.cluster_init(_ctx(data, weights=w))
    init.save(d["cluster-init"])
    ref = method.refine(_ctx(data, weights=w), ClusterInitOut.load(d["cluster-init"]), None)
    ref.save(d["refine"])
    return Run(d, pre, init, ref)


def _refine(chain: Run, extra: list[str]) -> RefineOut:
    """Refine again from the chain's weights and cluster-init with other settings."""
    method = ULDC(_config("uldc", extra))
    data = without_labels(load_dataset(method.run.dataset))
    ctx = _ctx(data, weights=chain.dirs["pretrain"] / art.WEIGHTS)
    return method.refine(ctx, ClusterInitOut.load(chain.dirs["cluster-init"]), None)


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Run:
    mp = pytest.MonkeyPatch()
    mp.setenv("DCFLOW_CONFIG_DIR", str(tmp_path_factory.mktemp("none")))
    try:
        return run_chain(tmp_path_factory.mktemp("uldc"))
    finally:
        mp.undo()


def test_pretrain_loss_goes_down_and_weights_hold_both_heads(chain: Run) -> None:
    m = chain.pretrain.metrics
    assert m["loss_last"] < m["loss_first"]
    state = load_state(chain.dirs["pretrain"] / art.WEIGHTS)
    assert set(state) == set(chain.pretrain.weights)
    assert state["instance_head.2.weight"].shape == (16, 32)
    assert state["cluster_head.2.weight"].shape == (10, 32)


@pytest.mark.parametrize("stage", ["cluster-init", "refine"])
def test_final_artifacts(chain: Run, stage: str) -> None:
    out = ClusterInitOut.load(chain.dirs[stage])  # the fields both stages save
    labels, proba, z = out.labels, out.proba, out.embeddings
    assert labels.shape == (300,) and labels.dtype == np.int64
    assert proba.shape == (300, 10) and proba.dtype == np.float32
    assert np.allclose(proba.sum(1), 1.0, atol=1e-5)
    assert np.array_equal(labels, proba.argmax(1))
    assert z.shape == (300, 16) and np.allclose(np.linalg.norm(z, axis=1), 1.0, atol=1e-5)
    returned = chain.init if stage == "cluster-init" else chain.refine
    assert np.array_equal(labels, returned.labels.numpy())


def test_refine_leaves_the_cluster_head_bit_identical(chain: Run) -> None:
    before = load_state(chain.dirs["pretrain"] / art.WEIGHTS)
    after = load_state(chain.dirs["refine"] / art.MODEL)
    assert chain.refine.model is not None and set(after) == set(chain.refine.model)
    heads = [k for k in before if k.startswith("cluster_head.")]
    assert heads and all(torch.equal(before[k], after[k]) for k in heads)
    moved = [
        k for k in before if k.startswith("backbone.") and not torch.equal(before[k], after[k])
    ]
    assert moved  # the features did train


def test_refine_history_is_per_epoch_and_evaluated_after_the_last(chain: Run) -> None:
    assert [row["epoch"] for row in chain.refine.history or []] == [1, 2]
    lines = (chain.dirs["refine"] / art.HISTORY).read_text().splitlines()
    assert len(lines) == 2
    m = chain.refine.metrics
    assert {"final_c3", "final_evi", "final_sdm", "final_z_std", "final_changed_vs_init"} <= set(m)
    assert np.isfinite(m["final_total"]) and m["final_z_std"] > 0


def test_same_seed_gives_identical_results(chain: Run, tmp_path: Path) -> None:
    again = run_chain(tmp_path)
    for stage in ("cluster-init", "refine"):
        a = ClusterInitOut.load(chain.dirs[stage]).proba
        assert np.array_equal(a, ClusterInitOut.load(again.dirs[stage]).proba)


@pytest.mark.parametrize("grad", [True, False])
def test_evidential_gradient_flag(grad: bool) -> None:
    method = ULDC(_config("uldc", [f"refine.evidential_grad={str(grad).lower()}"]))
    torch.manual_seed(0)
    z1 = torch.nn.functional.normalize(torch.randn(16, 8), dim=1).requires_grad_(True)
    z2 = torch.nn.functional.normalize(torch.randn(16, 8), dim=1).requires_grad_(True)
    terms = method.uldc_loss(z1, z2)
    assert terms["evi"].requires_grad is grad  # faithful mode: no path to the network
    if grad:
        g = torch.autograd.grad(terms["evi"], z1)[0]
        assert float(g.abs().sum()) > 0
    assert terms["y"].shape == (16, 16) and terms["u"].shape == (16,)


def test_uldc_loss_goes_down_in_a_few_steps() -> None:
    method = ULDC(_config("uldc", ["refine.k_sim=4", "refine.k_unc=4", "refine.k_cut=2"]))
    torch.manual_seed(0)
    x = torch.randn(32, 12)
    net = torch.nn.Linear(12, 8)
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    noise = 0.05 * torch.randn(32, 12)
    losses = []
    for _ in range(30):
        z1 = torch.nn.functional.normalize(net(x), dim=1)
        z2 = torch.nn.functional.normalize(net(x + noise), dim=1)
        loss = method.uldc_loss(z1, z2)["total"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_selection_counts_above_the_batch_are_config_errors(tmp_path: Path) -> None:
    method = ULDC(_config("uldc", ["refine.k_sim=100"]))
    data = without_labels(load_dataset(method.run.dataset))
    init = ClusterInitOut(np.zeros(data.n, dtype=np.int64))
    with pytest.raises(ConfigError, match="k_sim"):
        method.refine(_ctx(data, weights=tmp_path / "none.pt"), init, None)


def test_weights_of_another_network_are_refused(tmp_path: Path) -> None:
    torch.save({"backbone.x": torch.zeros(1)}, tmp_path / "w.pt")
    method = ULDC(_config("uldc"))
    data = without_labels(load_dataset(method.run.dataset))
    with pytest.raises(WeightsError, match="do not fit"):
        method.cluster_init(_ctx(data, weights=tmp_path / "w.pt"))
    with pytest.raises(WeightsError, match="needs pretrained"):
        method.cluster_init(_ctx(data))


def test_uldc_shares_the_cc_weights_cache_key() -> None:
    cc, uldc = get_method("cc")(_config("cc")), get_method("uldc")(_config("uldc"))
    assert uldc.weights_name() == cc.weights_name() == "cc"
    data = load_dataset(cc.run.dataset)
    assert weights_key("cc", data, cc.pretrain_config(), 0) == weights_key(
        uldc.weights_name(), data, uldc.pretrain_config(), 0
    )


def test_stage_runner_never_hands_labels_to_any_hook(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from dcflow.stages.cluster_init import cluster_init
    from dcflow.stages.pretrain import pretrain
    from dcflow.stages.refine import refine

    seen: dict[str, np.ndarray | None] = {}

    def spy(name: str) -> Callable[..., Any]:
        original = getattr(ULDC, name)

        def wrapped(self: ULDC, ctx: StageContext, *args: Any) -> Any:
            seen[name] = ctx.data.y
            return original(self, ctx, *args)

        return wrapped

    for name in ("pretrain", "cluster_init", "refine"):
        monkeypatch.setattr(ULDC, name, spy(name))
    cfg = _config("uldc", ["pretrain.epochs=1", "refine.epochs=1"]).to_json()
    p = pretrain(cfg, str(tmp_path / "store"), str(tmp_path / "p"))
    w = (p["weights_uri"], p["weights_sha256"])
    cluster_init(cfg, str(tmp_path / "c"), *w)
    refine(cfg, str(tmp_path / "c"), str(tmp_path / "r"), "", *w)
    assert set(seen) == {"pretrain", "cluster_init", "refine"}
    assert all(y is None for y in seen.values())
    saved = RefineOut.load(tmp_path / "r")  # the stage saved what the hook returned
    assert saved.labels.shape == (300,) and saved.model is not None
    assert {"final_total", "agreement_with_head"} <= set(saved.metrics)


def test_kmeans_read_out_is_consistent_and_label_free(chain: Run) -> None:
    out = _refine(chain, ["refine.assign=kmeans", "refine.epochs=1"])
    labels, proba, z = out.labels.numpy(), out.proba.numpy(), out.embeddings.numpy()
    assert np.array_equal(labels, proba.argmax(1)) and np.allclose(proba.sum(1), 1.0, atol=1e-5)
    centres = np.stack([z[labels == j].mean(0) for j in np.unique(labels)])
    nearest = ((z[:, None] - centres[None]) ** 2).sum(-1).argmin(1)
    assert np.array_equal(np.unique(labels)[nearest], labels)  # a k-means fixed point
    assert 0.0 <= out.metrics["agreement_with_head"] <= 1.0


def test_merge_read_out_is_consistent_and_label_free(chain: Run) -> None:
    out = _refine(chain, ["refine.assign=merge", "refine.epochs=1"])
    labels, proba = out.labels.numpy(), out.proba.numpy()
    assert proba.shape == (labels.shape[0], 10)
    assert np.array_equal(labels, proba.argmax(1)) and np.allclose(proba.sum(1), 1.0, atol=1e-5)
    z = out.embeddings
    merged = overcluster_merge(z, 10, ULDC(_config("uldc")).cfg.refine.merge, seed=0)
    assert torch.equal(out.proba, merged.proba)  # merge_readout is overcluster_merge, bit for bit


def _data() -> Dataset:
    return without_labels(load_dataset(_config("uldc").dataset))


def test_cc_predict_is_the_cluster_init_forward_pass(chain: Run) -> None:
    cc = get_method("cc")(_config("cc"))
    ctx = _ctx(_data(), weights=chain.dirs["pretrain"] / art.WEIGHTS)
    pred = cc.predict(ctx, ClusterInitOut.load(chain.dirs["cluster-init"]), None)
    assert torch.equal(pred.labels, chain.init.labels)
    assert torch.equal(pred.proba, chain.init.proba)  # the head's own softmax
    assert torch.equal(pred.embeddings, chain.init.embeddings)


@pytest.mark.parametrize("assign", ["head", "kmeans", "merge"])
def test_predict_reproduces_the_final_assignment(chain: Run, assign: str, tmp_path: Path) -> None:
    extra = [f"refine.assign={assign}", "refine.epochs=1"]
    _refine(chain, extra).save(tmp_path)
    saved = RefineOut.load(tmp_path)  # what predict gets: the saved model and readout.npz
    assert (saved.readout is None) == (assign == "head")
    if saved.readout is not None:
        assert set(saved.readout) == {"centers", "variance", "groups"}
    method, init = ULDC(_config("uldc", extra)), ClusterInitOut.load(chain.dirs["cluster-init"])
    pred = method.predict(_ctx(_data()), init, saved)  # no pretrained weights needed
    assert np.array_equal(pred.labels.numpy(), saved.labels)
    assert np.array_equal(pred.proba.numpy(), saved.proba)
    assert np.array_equal(pred.embeddings.numpy(), saved.embeddings)
    # inductive: a subset of the pool is assigned as within the whole pool
    data = _data()
    sub = Dataset(data.name, data.x[:50], None, data.index[:50], data.n_clusters)
    part = method.predict(_ctx(sub), init, saved)
    assert np.array_equal(part.labels.numpy(), saved.labels[:50])


def test_predict_needs_the_refined_model_and_the_readout(chain: Run, tmp_path: Path) -> None:
    method, init = ULDC(_config("uldc", ["refine.assign=kmeans"])), chain.init
    with pytest.raises(StageError, match="model"):
        method.predict(_ctx(_data()), init, None)
    no_readout = RefineOut.load(chain.dirs["refine"])  # a head run: nothing saved for kmeans
    with pytest.raises(StageError, match="readout"):
        method.predict(_ctx(_data()), init, no_readout)
