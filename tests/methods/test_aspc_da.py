from __future__ import annotations

import io
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from dcflow import artifacts as art
from dcflow.config import RunConfig, build_run_config
from dcflow.data import Dataset, load_dataset
from dcflow.errors import StageError, WeightsError
from dcflow.handoff import ClusterInitOut, RefineOut, SelectionOut
from dcflow.methods.aspc_da import ASPCDA
from dcflow.methods.base import StageContext
from dcflow.methods.registry import get_method
from dcflow.models import load_state
from dcflow.stages.common import without_labels

pytestmark = pytest.mark.usefixtures("isolated_env")

TINY = [
    "pretrain.hidden_dims=[32]",
    "pretrain.epochs=3",
    "pretrain.batch_size=64",
    "kmeans.n_init=2",
    "refine.max_iter=3",
    "refine.batch_size=64",
    "refine.lr=0.01",  # large enough that labels move on digits within 3 iterations
]
DATASET = {"name": "digits", "limit": 300}


@dataclass
class Run:
    """Output directories and metrics of one pretrain -> cluster-init -> select -> refine chain."""

    dirs: dict[str, Path]
    metrics: dict[str, dict[str, float]]
    data: Dataset
    centers_before: bytes


def _config(extra: list[str] | tuple[str, ...] = ()) -> RunConfig:
    method = get_method("aspc-da")
    return build_run_config(
        "aspc-da", method.Config, DATASET, overrides=[*TINY, *extra], use_preset=False
    )


def _ctx(data: Dataset, **kw: Any) -> StageContext:
    return StageContext(data=data, device=torch.device("cpu"), seed=kw.pop("seed", 0), **kw)


def run_chain(root: Path, extra: list[str] | tuple[str, ...] = (), seed: int = 0) -> Run:
    """The four hooks in pipeline order; each typed output saved as its stage file would."""
    cfg = _config(extra)
    method = ASPCDA(cfg)
    data = without_labels(load_dataset(cfg.dataset))
    d = {s: root / s for s in ("pretrain", "cluster-init", "select", "refine")}
    m: dict[str, dict[str, float]] = {}
    pre = method.pretrain(_ctx(data, seed=seed))
    pre.save(d["pretrain"])
    m["pretrain"] = pre.metrics
    weights = d["pretrain"] / art.WEIGHTS
    init = method.cluster_init(_ctx(data, weights=weights, seed=seed))
    init.save(d["cluster-init"])
    m["cluster-init"] = init.metrics
    centers = (d["cluster-init"] / art.CENTERS).read_bytes()
    sel = method.select(_ctx(data, seed=seed), ClusterInitOut.load(d["cluster-init"]))
    sel.save(d["select"])
    m["select"] = sel.metrics
    ref = method.refine(
        _ctx(data, weights=weights, seed=seed),
        ClusterInitOut.load(d["cluster-init"]),
        SelectionOut.load(d["select"]),
    )
    ref.save(d["refine"])
    m["refine"] = ref.metrics
    return Run(d, m, data, centers)


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run_chain(tmp_path_factory.mktemp("chain"))


def test_pretrain_writes_a_state_dict_and_loss_decreases(chain: Run) -> None:
    m = chain.metrics["pretrain"]
    assert np.isfinite(m["loss_first"]) and np.isfinite(m["loss_last"])
    assert m["loss_last"] < m["loss_first"]
    state = load_state(chain.dirs["pretrain"] / art.WEIGHTS)
    assert any(k.startswith("encoder.") for k in state)
    assert any(k.startswith("decoder.") for k in state)
    assert state["encoder.0.weight"].shape == (32, 64)


def test_cluster_init_artifacts(chain: Run) -> None:
    d, n = chain.dirs["cluster-init"], chain.data.n
    k = chain.data.n_clusters
    z = art.load_npy(d, art.EMBEDDINGS)
    mu = art.load_npy(d, art.CENTERS)
    labels = art.load_npy(d, art.LABELS)
    assert (n, k) == (300, 10)
    assert z.shape == (n, 10) and z.dtype == np.float32
    assert mu.shape == (k, 10) and mu.dtype == np.float32
    assert labels.shape == (n,) and labels.dtype == np.int64
    assert labels.min() >= 0 and labels.max() < k
    # labels are nearest-centre
    d2 = ((z[:, None, :] - mu[None, :, :]) ** 2).sum(-1)
    assert np.array_equal(labels, d2.argmin(1))


def test_selection_artifact(chain: Run) -> None:
    sel = art.load_npz(chain.dirs["select"], art.SELECTED)
    w = sel["weights"]
    assert w.shape == (300,) and w.dtype == np.float32
    assert set(np.unique(w).tolist()) == {0.0, 1.0}
    assert np.array_equal(sel["indices"], np.flatnonzero(w))
    assert sel["indices"].dtype == np.int64 and int(sel["t"]) == 0
    # t = 0: strictly below the mean clean loss
    z = art.load_npy(chain.dirs["cluster-init"], art.EMBEDDINGS).astype(np.float64)
    mu = art.load_npy(chain.dirs["cluster-init"], art.CENTERS).astype(np.float64)
    losses = ((z[:, None, :] - mu[None]) ** 2).sum(-1).min(1)
    assert float(sel["threshold"]) == pytest.approx(losses.mean(), rel=1e-4)
    assert chain.metrics["select"]["n_selected"] == w.sum()


def test_refine_artifacts_and_frozen_centres(chain: Run) -> None:
    d = chain.dirs["refine"]
    assert (chain.dirs["cluster-init"] / art.CENTERS).read_bytes() == chain.centers_before
    labels = art.load_npy(d, art.LABELS)
    assert labels.shape == (300,) and labels.dtype == np.int64
    assert labels.min() >= 0 and labels.max() < 10
    assert art.load_npy(d, art.EMBEDDINGS).shape == (300, 10)
    w = art.load_npz(d, art.SELECTED)["weights"]
    assert w.shape == (300,) and set(np.unique(w).tolist()) <= {0.0, 1.0}
    history = [json.loads(line) for line in (d / art.HISTORY).read_text().splitlines()]
    assert [h["t"] for h in history] == list(range(len(history)))
    assert 1 <= len(history) <= 3
    assert chain.metrics["refine"]["iterations"] == len(history)
    assert (d / art.MODEL).is_file()
    # clusters_used counts the frozen centres that still own a sample after refine
    assert chain.metrics["refine"]["clusters_used"] == len(np.unique(labels))
    assert [h["clusters_used"] for h in history][-1] <= 10


def test_per_cluster_threshold_selects_within_each_cluster(tmp_path: Path) -> None:
    from dcflow.clustering import squared_distances
    from dcflow.selection import per_cluster_self_paced_weights

    run = run_chain(tmp_path, ["refine.threshold=per_cluster"])
    d = run.dirs["refine"]
    z = torch.from_numpy(art.load_npy(d, art.EMBEDDINGS))
    mu = torch.from_numpy(art.load_npy(run.dirs["cluster-init"], art.CENTERS))
    losses, labels = squared_distances(z, mu).min(1)
    sel = art.load_npz(d, art.SELECTED)
    t = int(sel["t"]) - 1  # the weights of the last trained iteration (3 of T_max 3)
    v, lam = per_cluster_self_paced_weights(losses, labels, 10, t, 3)
    assert np.array_equal(sel["weights"], v.numpy())
    assert float(sel["threshold"]) == pytest.approx(lam, rel=1e-5)


def test_overclustered_centres_are_merged_into_k_labels(tmp_path: Path) -> None:
    run = run_chain(tmp_path, ["kmeans.over=2"])
    init, ref = run.dirs["cluster-init"], run.dirs["refine"]
    assert art.load_npy(init, art.CENTERS).shape == (20, 10)
    fine = art.load_npy(init, art.FINE_LABELS)
    assert fine.max() < 20 and len(np.unique(fine)) > 10
    assert len(np.unique(art.load_npy(init, art.LABELS))) == 10
    for d in (init, ref):  # the hand-off contract: K-way labels (refine at lr 0.01 may empty some)
        labels = art.load_npy(d, art.LABELS)
        assert labels.min() >= 0 and labels.max() < 10
    # every fine cluster lies inside one final cluster
    init_labels = art.load_npy(init, art.LABELS)
    assert all(len(np.unique(init_labels[fine == f])) == 1 for f in np.unique(fine))
    assert run.metrics["refine"]["clusters_used"] <= 20


def test_refined_fine_clusters_merge_on_the_cluster_init_graph(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dcflow.methods.aspc_da as mod

    graphs: list[torch.Tensor] = []
    real = mod.merge_labels

    def spy(z: torch.Tensor, fine: torch.Tensor, k: int) -> torch.Tensor:
        graphs.append(z.clone())
        return real(z, fine, k)

    monkeypatch.setattr(mod, "merge_labels", spy)
    run = run_chain(tmp_path, ["kmeans.over=2"])
    z_init = torch.from_numpy(art.load_npy(run.dirs["cluster-init"], art.EMBEDDINGS))
    z_refined = torch.from_numpy(art.load_npy(run.dirs["refine"], art.EMBEDDINGS))
    assert len(graphs) == 2 and not torch.equal(z_init, z_refined)
    # both merges (cluster-init, end of refine) use the cluster-init codes, not the refined ones
    assert all(torch.equal(g, z_init) for g in graphs)


def _predict(run: Run, data: Dataset, extra: list[str] | tuple[str, ...] = ()) -> Any:
    """The predict hook on ``data`` with the run's saved cluster-init and refine outputs."""
    weights = run.dirs["pretrain"] / art.WEIGHTS
    init = ClusterInitOut.load(run.dirs["cluster-init"])
    final = RefineOut.load(run.dirs["refine"])
    return ASPCDA(_config(extra)).predict(_ctx(data, weights=weights), init, final)


def _rows(data: Dataset, rows: np.ndarray) -> Dataset:
    return replace(data, x=data.x[rows], index=data.index[rows])


def test_predict_repeats_the_refined_assignment(chain: Run) -> None:
    d = chain.dirs["refine"]
    out = _predict(chain, chain.data)
    assert np.array_equal(out.labels.numpy(), art.load_npy(d, art.LABELS))
    assert np.array_equal(out.embeddings.numpy(), art.load_npy(d, art.EMBEDDINGS))
    assert out.proba is None and out.metrics["mean_centre_loss"] > 0
    # the frozen centres are saved with refine (the read-out's centres)
    mu = art.load_npy(chain.dirs["cluster-init"], art.CENTERS)
    assert np.array_equal(art.load_npy(d, art.CENTERS), mu)
    # inductive: other rows, in another order, get the labels the fit gave them
    rows = np.arange(chain.data.n)[::-3]
    again = _predict(chain, _rows(chain.data, rows))
    assert np.array_equal(again.labels.numpy(), art.load_npy(d, art.LABELS)[rows])


def test_predict_maps_fine_clusters_with_the_saved_map(tmp_path: Path) -> None:
    from dcflow.clustering import squared_distances

    over = ["kmeans.over=2"]
    run = run_chain(tmp_path, over)
    d = run.dirs["refine"]
    groups = art.load_npz(d, art.READOUT)["fine_to_cluster"]
    labels = art.load_npy(d, art.LABELS)
    z = torch.from_numpy(art.load_npy(d, art.EMBEDDINGS))
    mu = torch.from_numpy(art.load_npy(run.dirs["cluster-init"], art.CENTERS))
    fine = squared_distances(z, mu).argmin(1).numpy()
    assert groups.shape == (20,) and groups.dtype == np.int64
    assert np.array_equal(groups[fine], labels)  # every fine cluster went whole into one
    assert set(np.flatnonzero(groups < 0)) == set(range(20)) - set(fine)  # emptied: -1
    out = _predict(run, run.data, over)
    assert np.array_equal(out.labels.numpy(), labels)
    rows = np.arange(run.data.n)[::-2]
    assert np.array_equal(_predict(run, _rows(run.data, rows), over).labels.numpy(), labels[rows])
    # a centre the refine emptied is never predicted: its samples go to the nearest kept one
    final = RefineOut.load(d)
    assert final.readout is not None
    kept = groups.copy()
    kept[fine[0]] = -1
    final.readout["fine_to_cluster"] = kept
    init = ClusterInitOut.load(run.dirs["cluster-init"])
    ctx = _ctx(run.data, weights=run.dirs["pretrain"] / art.WEIGHTS)
    moved = ASPCDA(_config(over)).predict(ctx, init, final).labels.numpy()
    d2 = squared_distances(z, mu)
    d2[:, torch.from_numpy(kept < 0)] = float("inf")
    assert np.array_equal(moved, kept[d2.argmin(1).numpy()]) and (moved >= 0).all()
    # a run without the map (made before predict existed) is a clear error
    final.readout = None
    with pytest.raises(StageError, match="saved no fine_to_cluster map"):
        ASPCDA(_config(over)).predict(ctx, init, final)
    with pytest.raises(StageError, match="has no refine"):
        ASPCDA(_config(over)).predict(ctx, init, None)


def test_clusters_used_counts_nonempty_centres() -> None:
    from dcflow.clustering import nonempty_clusters

    assert nonempty_clusters(torch.tensor([0, 0, 3, 3, 3]), 5) == 2
    assert nonempty_clusters(torch.arange(4), 4) == 4


def test_refine_moves_labels_at_a_normal_lr(chain: Run) -> None:
    # control for the stop-rule test below: with lr 0.01 the labels do change
    assert chain.metrics["refine"]["last_delta"] > 0
    assert chain.metrics["refine"]["iterations"] == 3


def test_stop_rule_fires_when_labels_never_change(tmp_path: Path) -> None:
    run = run_chain(tmp_path, ["refine.lr=1e-12"])
    assert run.metrics["refine"]["iterations"] == 1
    assert run.metrics["refine"]["last_delta"] == 0.0
    init = art.load_npy(run.dirs["cluster-init"], art.LABELS)
    assert np.array_equal(art.load_npy(run.dirs["refine"], art.LABELS), init)


def test_same_seed_gives_identical_results(chain: Run, tmp_path: Path) -> None:
    again = run_chain(tmp_path)
    for stage, name in [("cluster-init", art.LABELS), ("refine", art.LABELS)]:
        a = art.load_npy(chain.dirs[stage], name)
        b = art.load_npy(again.dirs[stage], name)
        assert np.array_equal(a, b)
    assert again.metrics == chain.metrics


def test_without_labels_keeps_everything_else() -> None:
    data = load_dataset(_config().dataset)
    hidden = without_labels(data)
    assert hidden.y is None and data.y is not None
    assert hidden.x is data.x and hidden.index is data.index
    assert hidden.n_clusters == data.n_clusters


def _bad_weights(kind: str, path: Path) -> None:
    if kind == "list":
        torch.save([torch.zeros(2), torch.ones(3)], path)
    elif kind == "ints":
        torch.save({"encoder.0.weight": 3}, path)
    elif kind == "bytes":
        path.write_bytes(np.random.default_rng(0).bytes(256))
    else:  # a pickled arbitrary object: refused by weights_only loading
        buf = io.BytesIO()
        torch.save({"x": torch.zeros(1), "obj": Path("/")}, buf)
        path.write_bytes(buf.getvalue())


@pytest.mark.parametrize("kind", ["list", "ints", "bytes", "object"])
def test_weights_that_are_not_a_state_dict(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "bad.pt"
    _bad_weights(kind, path)
    with pytest.raises(WeightsError, match=r"bad\.pt"):
        load_state(path)
    method = ASPCDA(_config())
    data = without_labels(load_dataset(_config().dataset))
    with pytest.raises(WeightsError):
        method.cluster_init(_ctx(data, weights=path))


def test_weights_of_the_wrong_shape(tmp_path: Path) -> None:
    from dcflow.models import AutoEncoder

    path = tmp_path / "other.pt"
    torch.save(AutoEncoder([64, 16, 10]).state_dict(), path)
    data = without_labels(load_dataset(_config().dataset))
    with pytest.raises(WeightsError, match="do not fit"):
        ASPCDA(_config()).cluster_init(_ctx(data, weights=path))


def test_stage_without_weights(tmp_path: Path) -> None:
    data = without_labels(load_dataset(_config().dataset))
    with pytest.raises(WeightsError, match="needs pretrained autoencoder weights"):
        ASPCDA(_config()).cluster_init(_ctx(data))
