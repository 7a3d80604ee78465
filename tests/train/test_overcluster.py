"""SCAN over-clustering helpers (dcflow.train.overcluster)."""

import torch

from dcflow.clustering.merge import merged_proba
from dcflow.train.overcluster import fit_head, merge_fragments


def _chain_graph(n_per: int, n_frag: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n_frag`` fragments of ``n_per`` samples; fragments 0-1 and 2-3 touch, the rest alone."""
    n = n_per * n_frag
    frag = torch.arange(n) // n_per
    nbrs = torch.stack([(torch.arange(n) + 1) % n_per + frag * n_per] * 2, 1)  # ring per fragment
    # links across the border of 0-1 and of 2-3
    nbrs[n_per - 1, 1] = n_per
    nbrs[n_per, 1] = n_per - 1
    nbrs[3 * n_per - 1, 1] = 3 * n_per
    nbrs[3 * n_per, 1] = 3 * n_per - 1
    proba = torch.nn.functional.one_hot(frag, n_frag).float() * 0.9 + 0.1 / n_frag
    return proba, nbrs


def test_fragments_that_share_edges_are_merged() -> None:
    proba, nbrs = _chain_graph(10, 5)
    groups = merge_fragments(proba, nbrs, 3)
    assert groups.tolist() == [0, 0, 1, 1, 2]


def test_unused_fragment_joins_the_group_of_the_sample_it_claims() -> None:
    proba, nbrs = _chain_graph(10, 5)
    proba = torch.cat([proba, torch.zeros(50, 1)], 1)
    proba[35, 5] = 0.5  # fragment 5 is nobody's argmax; its strongest claim is sample 35 (frag 3)
    groups = merge_fragments(proba, nbrs, 3)
    assert groups.tolist() == [0, 0, 1, 1, 2, 1]


def test_merged_proba_adds_mass_per_group() -> None:
    proba = torch.tensor([[0.5, 0.2, 0.3], [0.1, 0.1, 0.8]])
    out = merged_proba(proba, torch.tensor([0, 1, 0]), 2)
    torch.testing.assert_close(out, torch.tensor([[0.8, 0.2], [0.9, 0.1]]))


def test_fit_head_reproduces_separable_targets() -> None:
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(3, 8, generator=g) * 5
    labels = torch.arange(300) % 3
    feats = centres[labels] + torch.randn(300, 8, generator=g)
    targets = torch.nn.functional.one_hot(labels, 3).float() * 0.9 + 0.1 / 3
    head, agree = fit_head(feats * 40.0, targets)  # the internal scaling copes with large features
    assert agree == 1.0
    assert torch.equal(head(feats * 40.0).argmax(1), labels)
