"""RUC's selection strategies and SCAN's neighbour mining (spec ruc.md sections 4.2, 4.6, 8)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dcflow.clustering.knn_mining import mine_neighbors, neighbor_purity
from dcflow.selection.ruc import confidence_mask, knn_vote, select_clean


def _pool(n: int = 60, k: int = 3) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % k
    centres = F.normalize(torch.randn(k, 8, generator=gen), dim=1) * 6
    emb = F.normalize(centres[labels] + torch.randn(n, 8, generator=gen), dim=1)
    conf = torch.rand(n, generator=gen)
    return emb, labels, conf


def test_mining_shape_self_first_unique_rows() -> None:
    emb, labels, _ = _pool()
    nbrs = mine_neighbors(emb, 5, chunk=7)
    assert nbrs.shape == (60, 6) and nbrs.dtype == torch.long
    assert torch.equal(nbrs[:, 0], torch.arange(60))
    assert all(len(set(row.tolist())) == 6 for row in nbrs)
    assert neighbor_purity(nbrs, labels) > 0.9
    assert torch.equal(nbrs, mine_neighbors(emb, 5))  # chunking does not change the result


def test_mining_keeps_self_first_with_duplicate_images() -> None:
    emb = F.normalize(torch.ones(5, 3), dim=1)
    assert torch.equal(mine_neighbors(emb, 2)[:, 0], torch.arange(5))


def test_confidence_threshold_is_inclusive() -> None:
    conf = torch.tensor([0.98, 0.99, 1.0])
    assert confidence_mask(conf, 0.99).tolist() == [False, True, True]


def test_hybrid_is_the_intersection_and_counts() -> None:
    emb, labels, conf = _pool()
    noisy = labels.clone()
    noisy[:6] = (noisy[:6] + 1) % 3  # six wrong pseudo-labels
    sel = select_clean(conf, noisy, emb, 3, "hybrid", 0.5, 10)
    assert torch.equal(sel.clean, sel.conf_mask & sel.metric_mask)
    assert int(sel.conf_mask.sum()) == int((conf >= 0.5).sum())
    assert not sel.metric_mask[:6].any()  # their neighbours out-vote them
    precision = (noisy[sel.clean] == labels[sel.clean]).float().mean()
    assert precision > (noisy == labels).float().mean()
    for strategy, mask in (("confidence", sel.conf_mask), ("metric", sel.metric_mask)):
        other = select_clean(conf, noisy, emb, 3, strategy, 0.5, 10)  # type: ignore[arg-type]
        assert torch.equal(other.clean, mask)


def test_degenerate_parameters_select_everything() -> None:
    emb, labels, conf = _pool()
    assert select_clean(conf, labels, emb, 3, "metric", 0.0, 1).clean.all()  # self-vote
    assert select_clean(conf, labels, emb, 3, "confidence", 0.0, 5).clean.all()


def test_vote_ties_go_to_the_smallest_class() -> None:
    emb = F.normalize(torch.tensor([[1.0, 0.0], [1.0, 0.01], [0.0, 1.0], [0.01, 1.0]]), dim=1)
    labels = torch.tensor([2, 1, 1, 0])
    vote, ties = knn_vote(emb, labels, 3, 2)
    assert vote.tolist() == [1, 1, 0, 0] and ties == 4
