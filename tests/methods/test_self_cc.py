"""Self-CC: the spec's invariants (shared/methods/self-cc.md section 8) and the stage chain."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from dcflow import artifacts as art
from dcflow.cli import main
from dcflow.clustering.metrics import cluster_acc
from dcflow.config import RunConfig, build_run_config
from dcflow.data import Dataset, load_dataset
from dcflow.errors import StageError, WeightsError
from dcflow.handoff import ClusterInitOut, RefineOut, SelectionOut
from dcflow.losses.self_cc import (
    log_membership,
    mixmatch_loss,
    mixup_lambda,
    module_update_loss,
    prior_penalty,
    sharpen,
    warmup_loss,
)
from dcflow.methods.base import StageContext
from dcflow.methods.self_cc import SelfCC
from dcflow.methods.self_cc_config import RTDSConfig
from dcflow.methods.self_cc_refine import load_module, make_views
from dcflow.methods.self_cc_rtds import run_rtds
from dcflow.models.self_cc import ClusteringModule
from dcflow.selection.self_cc import (
    clean_posterior,
    divide,
    eta_schedule,
    per_cluster_fraction,
    per_column_topk,
    quota,
    transition_sigma,
)
from dcflow.stages.common import without_labels
from dcflow.transforms import RandomAffine

pytestmark = pytest.mark.usefixtures("isolated_env")

TINY = [
    "pretrain.hidden_dims=[32]",
    "pretrain.epochs=3",
    "pretrain.batch_size=64",
    "cluster.n_init=2",
    "selection.eta_step=0.2",  # eta 0.6, 0.8: two outer iterations
    "views.count=2",
    "rtds.classifier1=[32]",
    "rtds.classifier2=[16]",
    "rtds.warmup_epochs=1",
    "rtds.cotrain_epochs=1",
    "rtds.optimizer=adam",
    "rtds.lr=0.001",
    "update.epochs=1",
    "update.optimizer=adam",
    "update.lr=0.0001",
]
DATASET = {"name": "digits", "limit": 300}


# ---------------------------------------------------------------- memberships (4.1)


def test_membership_rows_sum_to_one_and_stay_finite() -> None:
    c = torch.randn(10, 10)
    z = torch.cat([c[:3], c[:2] + 1e-4, torch.randn(20, 10)])  # exact hits and d < 1e-3
    for m in (1.1, 1.04):
        u = log_membership(z, c, m).exp()
        assert torch.isfinite(u).all()
        assert torch.allclose(u.sum(1), torch.ones(len(z)), atol=1e-5)
        assert torch.equal(u[:3].argmax(1), torch.arange(3))
    tiny = torch.full((4, 2), 1e-4)  # all distances far below 1e-3
    assert torch.isfinite(log_membership(tiny, torch.zeros(3, 2) + 1e-5, 1.1)).all()


def test_membership_tends_to_one_hot_and_follows_centre_order() -> None:
    gen = torch.Generator().manual_seed(0)
    z, c = torch.randn(50, 4, generator=gen), torch.randn(5, 4, generator=gen)
    nearest = torch.cdist(z, c).argmin(1)
    u = log_membership(z, c, 1.001).exp()
    assert torch.allclose(u, torch.nn.functional.one_hot(nearest, 5).float(), atol=1e-3)
    perm = torch.tensor([3, 0, 4, 1, 2])
    permuted = log_membership(z, c[perm], 1.1).exp()
    assert torch.allclose(permuted, log_membership(z, c, 1.1).exp()[:, perm], atol=1e-5)


def test_centres_must_be_rows() -> None:
    with pytest.raises(ValueError, match="centers must be"):
        log_membership(torch.zeros(5, 10), torch.zeros(10, 3), 1.1)


# ---------------------------------------------------------------- selection (4.2, 4.3)


def test_eta_schedules_and_quota() -> None:
    assert eta_schedule(0.6, 0.05, ">=") == [0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]
    mnist = eta_schedule(0.6, 0.025, ">")
    assert len(mnist) == 17 and mnist[-1] == 1.0
    assert eta_schedule(0.6, 0.1, ">=") == [0.6, 0.7, 0.8, 0.9]
    assert quota(0.29, 100) == 29 and int(0.29 * 100) == 28  # the truncation pitfall


def _memberships(sizes: list[int], seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    labels = torch.cat([torch.full((s,), k) for k, s in enumerate(sizes)])
    logits = torch.randn(len(labels), len(sizes), generator=gen)
    logits[torch.arange(len(labels)), labels] += 5.0
    return torch.softmax(logits, 1)


def test_per_cluster_fraction_invariants() -> None:
    u = _memberships([10] * 4)
    idx, lab = per_cluster_fraction(u, 0.6)
    assert torch.equal(torch.bincount(lab, minlength=4), torch.full((4,), 6))
    u = _memberships([40, 7, 23, 1, 0, 12], seed=1)
    hard = u.argmax(1)
    for eta in (0.6, 0.65, 0.95):
        idx, lab = per_cluster_fraction(u, eta)
        sizes = torch.bincount(hard, minlength=6)
        assert len(idx) == sum(quota(eta, int(s)) for s in sizes)
        assert len(set(idx.tolist())) == len(idx)
        assert torch.equal(hard[idx], lab)
        for k in range(6):
            chosen = idx[lab == k]
            rest = torch.tensor(
                [
                    i
                    for i in torch.nonzero(hard == k).squeeze(1).tolist()
                    if i not in set(chosen.tolist())
                ],
                dtype=torch.long,
            )
            if len(chosen) and len(rest):
                assert u[chosen, k].min() >= u[rest, k].max()


def test_per_column_topk_quota_from_n() -> None:
    u = _memberships([30, 10, 20])
    idx, lab = per_column_topk(u, 0.6)  # floor(0.6 * 60 / 3) = 12 per cluster
    assert torch.equal(torch.bincount(lab), torch.full((3,), 12))
    for k in range(3):
        assert torch.equal(idx[lab == k], torch.argsort(u[:, k], descending=True)[:12])
    assert len(per_column_topk(u, 0.5, per_cluster=6)[0]) == 9


# ---------------------------------------------------------------- RTDS pieces (4.4)


def test_warmup_loss_closed_forms() -> None:
    assert float(warmup_loss(torch.zeros(4, 10), torch.arange(4), 1.0)) == pytest.approx(
        0, abs=1e-6
    )
    p = torch.tensor([[0.75, 0.25]])
    expected = -math.log(0.75) + (0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert float(warmup_loss(p.log(), torch.tensor([0]), 1.0)) == pytest.approx(expected, rel=1e-5)
    # the penalty is negative entropy: with gamma > 0 a confident net pays more than with gamma 0
    sharp = torch.tensor([[8.0, 0.0]])
    assert float(warmup_loss(sharp, torch.tensor([0]), 0.0)) < 1e-3
    assert float(warmup_loss(sharp, torch.tensor([0]), 1.0)) < float(
        warmup_loss(sharp, torch.tensor([0]), 0.0)
    )


def test_sharpen_and_mixup_lambda() -> None:
    out = sharpen(torch.tensor([0.6, 0.4]), 0.5)
    assert torch.allclose(out, torch.tensor([0.36 / 0.52, 0.16 / 0.52]))
    assert out[0].item() == pytest.approx(0.692, abs=1e-3)
    lams = [mixup_lambda(0.3, 300, torch.Generator().manual_seed(s)) for s in range(5)]
    assert all(0.80 <= lam <= 0.93 for lam in lams)
    assert lams[0] == mixup_lambda(0.3, 300, torch.Generator().manual_seed(0))


def test_prior_term_and_unlabelled_weight() -> None:
    uniform = torch.full((10,), 0.1)
    assert float(prior_penalty(uniform, uniform)) == pytest.approx(0.0, abs=1e-7)
    assert float(prior_penalty(torch.tensor([0.5, 0.3, 0.2]), torch.full((3,), 1 / 3))) > 0
    gen = torch.Generator().manual_seed(0)
    lx, tx = torch.randn(8, 3, generator=gen), torch.softmax(torch.randn(8, 3, generator=gen), 1)
    lu, tu = torch.randn(8, 3, generator=gen), torch.softmax(torch.randn(8, 3, generator=gen), 1)
    base = mixmatch_loss(lx, tx, None, None, 0.0)
    assert torch.equal(mixmatch_loss(lx, tx, lu, tu, 0.0), base)  # sigma 0: U' has no effect
    mse = torch.nn.functional.mse_loss(torch.softmax(lu, 1), tu)
    assert float(mixmatch_loss(lx, tx, lu, tu, 2.0)) == pytest.approx(float(base + 2 * mse))
    faithful = mixmatch_loss(lx, tx, lu, tu, 1.0, faithful_views=20)  # logits MSE, pi = 1/A
    assert float(faithful) != pytest.approx(float(mixmatch_loss(lx, tx, lu, tu, 1.0)))


def test_gmm_division_on_constructed_losses() -> None:
    gen = torch.Generator().manual_seed(0)
    clean = 0.1 + 0.02 * torch.randn(90, generator=gen)
    noisy = 0.9 + 0.02 * torch.randn(10, generator=gen)
    losses = torch.cat([clean, noisy])[:, None].expand(100, 5)  # A = 5 identical views
    post = clean_posterior(losses)
    labelled, w = divide(post, "vote")
    assert torch.equal(labelled, torch.arange(100) < 90)
    assert float(w[:90].min()) > 0.99 and float(w[90:].max()) < 0.01
    assert torch.equal(divide(post, "mean", 0.2)[0], labelled)
    assert torch.equal(clean_posterior(torch.ones(4, 2)), torch.ones(4, 2))  # no spread


def test_gmm_populous_rule_picks_the_larger_component() -> None:
    gen = torch.Generator().manual_seed(0)
    # 80 % of the views sit at a HIGH loss: the USPS rule calls the 20 % low-loss ones clean,
    # the STL/CIFAR rule the populous 80 %
    many = 0.9 + 0.02 * torch.randn(80, generator=gen)
    few = 0.1 + 0.02 * torch.randn(20, generator=gen)
    losses = torch.cat([many, few])[:, None].expand(100, 5)
    low_mean = divide(clean_posterior(losses), "vote")[0]
    populous = divide(clean_posterior(losses, 1e-4, rule="populous", fits=10), "mean", 0.2)[0]
    assert torch.equal(low_mean, torch.arange(100) >= 80)
    assert torch.equal(populous, torch.arange(100) < 80)
    # deterministic under the seed
    again = clean_posterior(losses, 1e-4, rule="populous", fits=10)
    assert torch.equal(again, clean_posterior(losses, 1e-4, rule="populous", fits=10))


def test_transition_sigma_fires_only_on_symmetric_noise() -> None:
    k = 10
    sym = torch.full((k, k), 0.2 / (k - 1)) + 0.8 * torch.eye(k) - 0.2 / (k - 1) * torch.eye(k)
    assert transition_sigma(sym) == 1.0
    pair = 0.8 * torch.eye(k)
    pair[torch.arange(k), (torch.arange(k) + 1) % k] = 0.2
    assert transition_sigma(pair) == 0.0


def test_module_update_raises_the_target_membership() -> None:
    torch.manual_seed(0)
    module = ClusteringModule(torch.nn.Linear(4, 3), torch.randn(5, 3), 1.1)
    x, k = torch.randn(1, 4), torch.tensor([2])
    log_u = module(x)
    assert float(module_update_loss(log_u, k).detach()) == pytest.approx(
        -float(log_u[0, 2].detach())
    )
    opt = torch.optim.SGD(module.parameters(), lr=0.01)
    module_update_loss(log_u, k).backward()
    opt.step()
    assert float(module(x)[0, 2].detach()) > float(log_u[0, 2].detach())


def test_agreement_is_one_under_a_relabelling() -> None:
    a = np.random.default_rng(0).integers(0, 10, 500)
    assert cluster_acc(a, (a * 3 + 1) % 10) == 1.0


def test_views_are_uint8_and_seeded() -> None:
    images = torch.rand(6, 1, 8, 8)
    aug = RandomAffine(10.0, 0.1)
    v1 = make_views(images, 4, aug, torch.Generator().manual_seed(1))
    v2 = make_views(images, 4, aug, torch.Generator().manual_seed(1))
    assert v1.shape == (6, 4, 64) and v1.dtype == torch.uint8
    assert torch.equal(v1, v2) and not torch.equal(v1[:, 0], v1[:, 1])


def test_rtds_target_shape_and_learning() -> None:
    gen = torch.Generator().manual_seed(0)
    centres = torch.randn(3, 16, generator=gen) * 3
    y = torch.arange(3).repeat_interleave(20)
    x = centres[y] + 0.3 * torch.randn(60, 16, generator=gen)
    noisy = y.clone()
    noisy[:6] = (y[:6] + 1) % 3  # 10 % wrong pseudo-labels
    cfg = RTDSConfig(
        classifier1=[32],
        classifier2=[16],
        warmup_epochs=20,
        warmup_batch_size=32,
        cotrain_epochs=5,
        batch_size=32,
        optimizer="adam",
        lr=0.01,
    )
    views = x[:, None, :].expand(60, 2, 16).contiguous()
    res = run_rtds(views, noisy, x, 3, cfg, gen)
    assert res.target.shape == (60, 3)
    assert torch.allclose(res.target.sum(1), torch.full((60,), 2.0), atol=1e-5)
    assert (res.target.argmax(1) == y).float().mean() >= 0.9  # corrects the flipped labels
    assert res.sigma == 0.0 and len(res.labelled) == 2 and res.labelled[0].shape == (60,)


# ---------------------------------------------------------------- the stage chain


@dataclass
class Run:
    dirs: dict[str, Path]
    metrics: dict[str, dict[str, float]]
    data: Dataset
    init: ClusterInitOut
    selection: SelectionOut
    refined: RefineOut


def _config(extra: list[str] | tuple[str, ...] = ()) -> RunConfig:
    return build_run_config(
        "self-cc", SelfCC.Config, DATASET, overrides=[*TINY, *extra], use_preset=False
    )


def _ctx(data: Dataset, **kw: Any) -> StageContext:
    return StageContext(data=data, device=torch.device("cpu"), seed=0, **kw)


def run_chain(root: Path, extra: list[str] | tuple[str, ...] = ()) -> Run:
    """The hooks in stage order; each output saved and loaded back, as the stage files do."""
    method = SelfCC(_config(extra))
    data = without_labels(load_dataset(_config(extra).dataset))
    d = {s: root / s for s in ("pretrain", "cluster-init", "select", "refine")}
    w = d["pretrain"] / art.WEIGHTS
    pre = method.pretrain(_ctx(data))
    pre.save(d["pretrain"])
    out = method.cluster_init(_ctx(data, weights=w))
    out.save(d["cluster-init"])
    init = ClusterInitOut.load(d["cluster-init"])
    sel = method.select(_ctx(data), init)
    sel.save(d["select"])
    selection = SelectionOut.load(d["select"])
    refined = method.refine(_ctx(data, weights=w), init, selection)
    refined.save(d["refine"])
    m = {"pretrain": pre.metrics, "cluster-init": out.metrics}
    m |= {"select": sel.metrics, "refine": refined.metrics}
    return Run(d, m, data, init, selection, refined)


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run_chain(tmp_path_factory.mktemp("chain"))


def test_cluster_init_artifacts(chain: Run) -> None:
    d = chain.dirs["cluster-init"]
    u = art.load_npy(d, art.MEMBERSHIP)
    assert u.shape == (300, 10) and u.dtype == np.float32 and np.isfinite(u).all()
    assert np.allclose(u.sum(1), 1.0, atol=1e-5)
    assert art.load_npy(d, art.CENTERS).shape == (10, 10)
    assert np.array_equal(art.load_npy(d, art.LABELS), u.argmax(1))
    assert chain.init.fine_labels is None and chain.init.model is None  # cluster.over = 1


def test_selection_artifact(chain: Run) -> None:
    sel = art.load_npz(chain.dirs["select"], art.SELECTED)
    u = art.load_npy(chain.dirs["cluster-init"], art.MEMBERSHIP)
    idx, lab = sel["indices"], sel["pseudo_labels"]
    assert idx.dtype == np.int64 and float(sel["eta"]) == 0.6 and int(sel["t"]) == 0
    assert len(np.unique(idx)) == len(idx)
    assert np.array_equal(u.argmax(1)[idx], lab)
    sizes = np.bincount(u.argmax(1), minlength=10)
    assert len(idx) == sum(quota(0.6, int(s)) for s in sizes)


def test_refine_artifacts(chain: Run) -> None:
    d, n = chain.dirs["refine"], 300
    q = art.load_npy(d, art.TARGET)
    assert q.shape == (n, 10) and np.allclose(q.sum(1), 2.0, atol=1e-4)
    proba = art.load_npy(d, art.PROBA)
    assert proba.dtype == np.float32 and np.allclose(proba.sum(1), 1.0, atol=1e-5)
    u = art.load_npy(d, art.MEMBERSHIP)
    assert np.isfinite(u).all() and np.array_equal(art.load_npy(d, art.LABELS), u.argmax(1))
    assert art.load_npy(d, art.CENTERS).shape == (10, 10)
    assert art.load_npy(d, art.EMBEDDINGS).shape == (n, 10)
    sel = art.load_npz(d, art.SELECTED)
    assert sel["eta"].tolist() == [0.6, 0.8]
    first = art.load_npz(chain.dirs["select"], art.SELECTED)
    assert np.array_equal(sel["indices"][sel["t"] == 0], first["indices"])
    for t in (0, 1):
        for k in range(10):
            chosen = sel["indices"][(sel["t"] == t) & (sel["pseudo_labels"] == k)]
            assert len(np.unique(chosen)) == len(chosen)
    div = art.load_npz(d, art.DIVISION)
    assert div["labelled_h1"].shape == div["weights_h2"].shape == (int((sel["t"] == 1).sum()),)
    history = [json.loads(line) for line in (d / art.HISTORY).read_text().splitlines()]
    assert [h["t"] for h in history] == [0, 1] and all("sigma" in h for h in history)
    assert chain.metrics["refine"]["n_outer"] == 2
    assert div["indices"].dtype == np.int64 and div["labelled_h2"].dtype == np.bool_
    assert sel["eta"].dtype == np.float64 and sel["t"].dtype == np.int64
    module = torch.load(d / art.MODEL, weights_only=True)
    assert np.array_equal(module["centers"].numpy(), art.load_npy(d, art.CENTERS))
    assert torch.equal(chain.refined.labels, torch.from_numpy(art.load_npy(d, art.LABELS)))


def test_refine_without_a_selection_stage_recomputes_it(chain: Run, tmp_path: Path) -> None:
    """A layout without confident-sample-selection: refine selects at eta_0 itself, same result."""
    alone = SelfCC(_config()).refine(
        _ctx(chain.data, weights=chain.dirs["pretrain"] / art.WEIGHTS), chain.init, None
    )
    assert torch.equal(alone.labels, chain.refined.labels)
    assert alone.selected is not None and chain.refined.selected is not None
    for k in ("indices", "pseudo_labels", "t", "eta"):
        assert np.array_equal(alone.selected[k], chain.refined.selected[k])


def test_selection_with_another_eta_is_refused(chain: Run) -> None:
    stale = SelectionOut.load(chain.dirs["select"])
    stale.selected.extras["eta"] = np.float64(0.7)
    ctx = _ctx(chain.data, weights=chain.dirs["pretrain"] / art.WEIGHTS)
    with pytest.raises(StageError, match="selection artifact has eta 0.7"):
        SelfCC(_config()).refine(ctx, chain.init, stale)


def test_same_seed_gives_identical_results(chain: Run, tmp_path: Path) -> None:
    again = run_chain(tmp_path)
    for stage, name in [("select", art.SELECTED), ("refine", art.SELECTED)]:
        a, b = art.load_npz(chain.dirs[stage], name), art.load_npz(again.dirs[stage], name)
        assert all(np.array_equal(a[k], b[k]) for k in a)
    for name in (art.LABELS, art.PROBA):
        assert np.array_equal(
            art.load_npy(chain.dirs["refine"], name), art.load_npy(again.dirs["refine"], name)
        )


def _predict(run: Run, data: Dataset, final: RefineOut | None) -> Any:
    ctx = _ctx(data, weights=run.dirs["pretrain"] / art.WEIGHTS)
    return SelfCC(_config()).predict(ctx, run.init, final)


def test_predict_repeats_argmax_u_of_the_refined_module(chain: Run) -> None:
    d = chain.dirs["refine"]
    final = RefineOut.load(d)
    out = _predict(chain, chain.data, final)
    assert np.array_equal(out.labels.numpy(), art.load_npy(d, art.LABELS))
    # proba is the module's memberships U (not the RTDS classifiers' Q / 2), in the fit as here:
    # ECE pairs argmax U with U's own confidence
    assert np.array_equal(out.proba.numpy(), art.load_npy(d, art.MEMBERSHIP))
    assert np.array_equal(art.load_npy(d, art.PROBA), art.load_npy(d, art.MEMBERSHIP))
    assert np.array_equal(art.load_npy(d, art.PROBA).argmax(1), art.load_npy(d, art.LABELS))
    assert np.array_equal(out.embeddings.numpy(), art.load_npy(d, art.EMBEDDINGS))
    # inductive: other rows, in another order, get the labels the fit gave them
    rows = np.arange(chain.data.n)[::-3]
    sub = replace(chain.data, x=chain.data.x[rows], index=chain.data.index[rows])
    assert np.array_equal(
        _predict(chain, sub, final).labels.numpy(), art.load_npy(d, art.LABELS)[rows]
    )
    # without refine: the cluster-init module (pretrained encoder, k-means centres)
    init = _predict(chain, chain.data, None)
    assert np.array_equal(init.labels.numpy(), art.load_npy(chain.dirs["cluster-init"], art.LABELS))
    final.model = None
    with pytest.raises(WeightsError, match="refine saved no clustering module"):
        _predict(chain, chain.data, final)


def test_agreement_stop_ends_the_loop(tmp_path: Path) -> None:
    run = run_chain(tmp_path, ["selection.agreement_stop=0.01"])
    assert run.metrics["refine"]["n_outer"] == 1
    assert run.metrics["refine"]["stopped_by_agreement"] == 1.0


def test_empty_schedule_is_a_clear_error(tmp_path: Path) -> None:
    method = SelfCC(_config(["selection.eta0=1.0"]))
    data = without_labels(load_dataset(_config().dataset))
    u = np.full((300, 10), 0.1, np.float32)
    init = ClusterInitOut(np.zeros(300, np.int64), membership=u)
    with pytest.raises(StageError, match="schedule is empty"):
        method.select(_ctx(data), init)


def test_overclustered_start_carries_the_merge_into_refine(tmp_path: Path) -> None:
    over = ["cluster.over=3", "cluster.fit_epochs=3", "update.lr=0.001"]
    run = run_chain(tmp_path, over)
    d = run.dirs["cluster-init"]
    fine, labels = art.load_npy(d, art.FINE_LABELS), art.load_npy(d, art.LABELS)
    assert fine.max() == 29 and labels.max() <= 9
    # every fine cluster lies (almost) inside one merged cluster: the fit carried the merge
    z = torch.from_numpy(art.load_npy(d, art.EMBEDDINGS))
    assert z.shape == (300, 10)
    nested = sum(np.bincount(labels[fine == j]).max() for j in np.unique(fine))
    assert nested / 300 >= 0.9 and run.metrics["cluster-init"]["fit_agreement"] >= 0.9
    # refine starts from the fitted module, not from the pretrained encoder
    module = torch.load(d / art.MODEL, weights_only=True)
    assert np.allclose(module["centers"].numpy(), art.load_npy(d, art.CENTERS))
    pretrained = torch.load(run.dirs["pretrain"] / art.WEIGHTS, weights_only=True)
    key = next(k for k in module if k.startswith("encoder"))
    assert not torch.equal(module[key], pretrained[key])
    assert run.init.model is not None and run.init.model.keys() == module.keys()
    method = SelfCC(_config(over))
    ctx = _ctx(run.data, weights=run.dirs["pretrain"] / art.WEIGHTS)
    assert torch.equal(
        method._module(ctx, run.init).encoder.state_dict()[key.removeprefix("encoder.")],
        module[key],
    )
    assert run.metrics["refine"]["n_outer"] == 2
    # without the fitted module, or with one that does not fit: one-line WeightsError
    bare = ClusterInitOut(run.init.labels, centers=run.init.centers)
    with pytest.raises(WeightsError, match="no fitted clustering module"):
        method._module(ctx, bare)
    with pytest.raises(WeightsError, match="does not fit the clustering module"):
        load_module(method._module(ctx, run.init), {"centers": torch.zeros(3, 2)})
    # predict: the refined module's argmax U; without refine, cluster-init's fitted module
    final = RefineOut.load(run.dirs["refine"])
    refined = art.load_npy(run.dirs["refine"], art.LABELS)
    assert np.array_equal(method.predict(ctx, run.init, final).labels.numpy(), refined)
    assert np.array_equal(method.predict(ctx, run.init, None).labels.numpy(), labels)


def test_an_empty_merged_cluster_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dcflow.methods.self_cc as mod

    monkeypatch.setattr(mod, "merge_labels", lambda z, fine, k: torch.zeros_like(fine))
    with pytest.raises(StageError, match="left a cluster empty; lower cluster.over"):
        run_chain(tmp_path, ["cluster.over=3"])


def test_augmented_pretrain_recipe_changes_the_weights(tmp_path: Path) -> None:
    data = without_labels(load_dataset(_config().dataset))
    weights = {}
    for name, extra in [
        ("plain", []),
        ("aug", ["pretrain.augment=true", "pretrain.views.stroke=0.5"]),
    ]:
        out = SelfCC(_config(extra)).pretrain(_ctx(data))
        m = out.metrics
        assert m["loss_last"] < m["loss_first"] and math.isfinite(m["loss_last"])
        out.save(tmp_path / name)
        weights[name] = torch.load(tmp_path / name / art.WEIGHTS, weights_only=True)
    a, b = weights["plain"], weights["aug"]
    assert a.keys() == b.keys() and any(not torch.equal(a[k], b[k]) for k in a)


CONTRASTIVE = [
    "pretrain.fe=simclr",
    "pretrain.model.backbone=resnet18",
    "pretrain.model.width=4",
    "pretrain.model.proj_dim=16",
    "pretrain.simclr.epochs=2",
    "pretrain.simclr.batch_size=128",
    "pretrain.simclr.optimizer=adam",
    "pretrain.simclr.lr=0.001",
    "pretrain.simclr.view={crop_scale: 0.5, flip: false}",
    "cluster.m=1.04",
    "rtds.arch=resnet18",
    "rtds.width=4",
    "rtds.classifier1=[8]",
    "rtds.classifier2=[]",
]


def test_contrastive_fe_and_resnet_classifiers_run_the_chain(tmp_path: Path) -> None:
    run = run_chain(tmp_path, CONTRASTIVE)
    weights = torch.load(run.dirs["pretrain"] / art.WEIGHTS, weights_only=True)
    assert any(k.startswith("backbone.stages") for k in weights)  # the SimCLR network
    assert run.metrics["pretrain"]["simclr_loss_last"] > 0
    d = run.dirs["cluster-init"]
    z = art.load_npy(d, art.EMBEDDINGS)
    assert z.shape == (300, 32) and np.allclose(np.linalg.norm(z, axis=1), 1.0, atol=1e-5)
    assert art.load_npy(d, art.CENTERS).shape == (10, 32)
    u = art.load_npy(run.dirs["refine"], art.MEMBERSHIP)
    assert np.isfinite(u).all() and np.allclose(u.sum(1), 1.0, atol=1e-5)
    assert run.metrics["refine"]["n_outer"] == 2
    again = run_chain(tmp_path / "again", CONTRASTIVE)
    assert np.array_equal(
        art.load_npy(run.dirs["refine"], art.LABELS), art.load_npy(again.dirs["refine"], art.LABELS)
    )


def test_resnet_classifier_needs_the_image_shape() -> None:
    cfg = RTDSConfig(arch="resnet18", width=4, classifier1=[8], classifier2=[])
    views = torch.randint(0, 255, (12, 2, 64), dtype=torch.uint8)
    labels = torch.arange(12) % 3
    with pytest.raises(ValueError, match="needs the image shape"):
        run_rtds(views, labels, torch.rand(20, 64), 3, cfg, torch.Generator())
    res = run_rtds(views, labels, torch.rand(20, 64), 3, cfg, torch.Generator(), 0, (1, 8, 8))
    assert res.target.shape == (20, 3) and torch.allclose(res.target.sum(1), torch.full((20,), 2.0))


# ---------------------------------------------------------------- the real local pipeline


def test_self_cc_runs_through_the_local_pipeline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    sets = [a for s in ["dataset.limit=300", *TINY] for a in ("--set", s)]
    assert main(["run", "self-cc", *sets, "--json", "out.json", "--quiet"]) == 0
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["method"] == "self-cc" and out["n_samples"] == 300
    assert set(out["metrics"]) >= {"acc", "nmi", "ari", "ece"}
    assert list(out["stages"]) == [
        "download-weights",
        "pretrain",
        "cluster-init",
        "confident-sample-selection",
        "refine",
        "evaluate",
    ]
    assert out["stages"]["refine"]["metrics"]["n_outer"] == 2
    assert out["stages"]["confident-sample-selection"]["metrics"]["n_outer_planned"] == 2
    assert 0.0 <= out["metrics"]["ece"] <= 1.0
    assert "acc" in out["stages"]["cluster-init"]["metrics"]
