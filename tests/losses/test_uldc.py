"""ULDC and CC building blocks: closed forms, spec invariants (uldc.md Sec. 8), gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dcflow.errors import ConfigError
from dcflow.losses.cc import cluster_contrastive_loss, cluster_entropy, instance_contrastive_loss
from dcflow.losses.uldc import (
    c3_loss,
    dirichlet_kl_uniform,
    evidence_tanh,
    evidential_loss,
    evidential_row_loss,
    row_normalise,
    sdm_loss,
    uncertainty,
)
from dcflow.selection.uldc import select_partners


def _unit(b: int, d: int, seed: int = 0) -> torch.Tensor:
    return F.normalize(torch.randn(b, d, generator=torch.Generator().manual_seed(seed)), dim=1)


def _ntxent_reference(a: torch.Tensor, b: torch.Tensor, tau: float) -> float:
    """Row-by-row NT-Xent as written in the CC paper (Eq. 2-3)."""
    z = F.normalize(torch.cat([a, b]), dim=1).double()
    m, total = a.shape[0], 0.0
    for i in range(2 * m):
        pos = (i + m) % (2 * m)
        num = math.exp(float(z[i] @ z[pos]) / tau)
        den = sum(math.exp(float(z[i] @ z[j]) / tau) for j in range(2 * m) if j != i)
        total -= math.log(num / den)
    return total / (2 * m)


# --- CC ---------------------------------------------------------------------------------------


def test_instance_loss_matches_the_row_by_row_definition() -> None:
    z1, z2 = _unit(6, 5, 1), _unit(6, 5, 2)
    got = float(instance_contrastive_loss(z1, z2, 0.5))
    assert got == pytest.approx(_ntxent_reference(z1, z2, 0.5), rel=1e-5)


def test_cluster_loss_is_column_ntxent_plus_entropy() -> None:
    p1 = torch.softmax(torch.randn(8, 3, generator=torch.Generator().manual_seed(3)), 1)
    p2 = torch.softmax(torch.randn(8, 3, generator=torch.Generator().manual_seed(4)), 1)
    ent = float(cluster_entropy(p1) + cluster_entropy(p2))
    got = float(cluster_contrastive_loss(p1, p2, 1.0, 1.0))
    assert got == pytest.approx(_ntxent_reference(p1.T, p2.T, 1.0) + ent, rel=1e-5)
    assert float(cluster_contrastive_loss(p1, p2, 1.0, 0.0)) == pytest.approx(got - ent, rel=1e-5)


def test_cluster_entropy_closed_forms() -> None:
    assert float(cluster_entropy(torch.full((4, 5), 0.2))) == pytest.approx(0.0, abs=1e-6)
    one = torch.zeros(4, 5)
    one[:, 2] = 1.0
    assert float(cluster_entropy(one)) == pytest.approx(math.log(5), rel=1e-6)


# --- C3 ---------------------------------------------------------------------------------------


def _c3_reference(z1: torch.Tensor, z2: torch.Tensor, zeta: float) -> float:
    z = torch.cat([z1, z2]).double()
    b, total = z1.shape[0], 0.0
    for i in range(2 * b):
        s = [float(z[i] @ z[j]) for j in range(2 * b)]
        pos = [j for j in range(2 * b) if s[j] > zeta or j in (i, (i + b) % (2 * b))]
        total -= math.log(sum(math.exp(s[j]) for j in pos) / sum(math.exp(v) for v in s))
    return total / b


@pytest.mark.parametrize("zeta", [0.0, 0.3, 0.6, 1.0])
def test_c3_matches_reference_and_is_non_negative(zeta: float) -> None:
    z1, z2 = _unit(5, 3, 5), _unit(5, 3, 6)
    got = float(c3_loss(z1, z2, zeta))
    assert got == pytest.approx(_c3_reference(z1, z2, zeta), rel=1e-5)
    assert got >= 0.0


def test_c3_with_zeta_one_uses_only_self_and_other_view() -> None:
    z1, z2 = _unit(4, 6, 7), _unit(4, 6, 8)
    z = torch.cat([z1, z2])
    s = z @ z.T
    idx = torch.arange(8)
    pos = torch.logsumexp(torch.stack([s[idx, idx], s[idx, (idx + 4) % 8]], 1), 1)
    expected = float((torch.logsumexp(s, 1) - pos).sum() / 4)
    assert float(c3_loss(z1, z2, 1.0)) == pytest.approx(expected, rel=1e-6)


def test_c3_is_zero_at_collapse() -> None:
    z = F.normalize(torch.ones(6, 4), dim=1)  # documented trivial minimum (spec pitfall 10)
    assert float(c3_loss(z, z.clone(), 0.6)) == pytest.approx(0.0, abs=1e-6)


# --- evidence, uncertainty, evidential loss ---------------------------------------------------


def test_zero_similarity_gives_unit_evidence_and_half_uncertainty() -> None:
    e = evidence_tanh(torch.zeros(7, 7), 0.1)
    assert torch.equal(e, torch.ones(7, 7))
    assert torch.allclose(uncertainty(e + 1, e.T + 1), torch.full((7,), 0.5))


def test_uncertainty_in_unit_interval_and_decreasing_in_similarity() -> None:
    s = torch.rand(6, 6, generator=torch.Generator().manual_seed(0)) * 2 - 1
    e = evidence_tanh(s)
    u = uncertainty(e + 1, e.T + 1)
    assert u.shape == (6,) and bool(((u > 0) & (u < 1)).all())
    s2 = s.clone()
    s2[2, 4] += 0.3
    e2 = evidence_tanh(s2)
    u2 = uncertainty(e2 + 1, e2.T + 1)
    assert u2[2] < u[2] and u2[4] < u[4]  # row 2 of S, row 4 of S^T
    assert torch.allclose(u2[[0, 1, 3, 5]], u[[0, 1, 3, 5]])


def test_dirichlet_kl_matches_torch_distributions() -> None:
    a = torch.rand(4, 9, generator=torch.Generator().manual_seed(1)).double() * 5 + 0.1
    ref = torch.distributions.kl_divergence(
        torch.distributions.Dirichlet(a), torch.distributions.Dirichlet(torch.ones_like(a))
    )
    assert torch.allclose(dirichlet_kl_uniform(a), ref, atol=1e-8)
    assert torch.allclose(dirichlet_kl_uniform(torch.ones(3, 5)), torch.zeros(3), atol=1e-6)


def test_evidential_row_loss_closed_form_and_kl_vanishes_on_partner_only_evidence() -> None:
    y = torch.tensor([[1.0, 0.0, 0.0]])
    alpha = torch.tensor([[5.0, 1.0, 1.0]])  # evidence only on the partner: a~ = 1 everywhere
    p = alpha / 7.0
    expected = float(((y - p) ** 2).sum() + (p * (1 - p) / 8.0).sum())
    assert float(evidential_row_loss(alpha, y, 0.1)) == pytest.approx(expected, rel=1e-6)
    alpha_bad = torch.tensor([[5.0, 3.0, 1.0]])
    assert float(evidential_row_loss(alpha_bad, y, 0.1)) > float(
        evidential_row_loss(alpha_bad, y, 0.0)
    )
    many = torch.rand(10, 10) * 50 + 1
    assert bool((evidential_row_loss(many, (torch.rand(10, 10) > 0.7).float()) >= 0).all())


def test_evidential_loss_has_a_gradient_wrt_the_embeddings() -> None:
    z1 = _unit(8, 4, 1).requires_grad_(True)
    z2 = _unit(8, 4, 2).requires_grad_(True)
    s = z1 @ z2.T
    y = select_partners(s, torch.rand(8), 3, 2, 2).indicator
    (g1, g2) = torch.autograd.grad(evidential_loss(s, y), (z1, z2))
    assert float(g1.abs().sum()) > 0 and float(g2.abs().sum()) > 0
    detached = evidential_loss(s.detach(), y)
    assert not detached.requires_grad  # the upstream (faithful) mode: no path to the network


# --- selection --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("b", "k_sim", "k_unc", "k_cut"), [(16, 5, 4, 2), (12, 3, 0, 3), (9, 9, 9, 1)]
)
def test_indicator_counts_and_most_similar_partners(
    b: int, k_sim: int, k_unc: int, k_cut: int
) -> None:
    gen = torch.Generator().manual_seed(b)
    s, u = torch.rand(b, b, generator=gen) * 2 - 1, torch.rand(b, generator=gen)
    sel = select_partners(s, u, k_sim, k_unc, k_cut)
    y = sel.indicator.numpy()
    assert y.shape == (b, b) and set(np.unique(y)) <= {0.0, 1.0}
    assert int(sel.uncertain.sum()) == k_unc
    assert set(np.flatnonzero(sel.uncertain.numpy())) == set(np.argsort(-u.numpy())[:k_unc])
    assert y.sum() == b * k_sim - k_unc * (k_sim - k_cut)
    order = np.argsort(-s.numpy(), axis=1)
    for i in range(b):
        k = k_cut if sel.uncertain[i] else k_sim
        assert set(np.flatnonzero(y[i])) == set(order[i, :k])  # the k most similar partners


def test_cut_rows_are_subsets_of_their_uncut_rows() -> None:
    s, u = torch.randn(10, 10), torch.rand(10)
    full = select_partners(s, u, 4, 0, 4).indicator
    cut = select_partners(s, u, 4, 3, 2).indicator
    assert bool((cut <= full).all())


def test_bad_counts_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="k_cut"):
        select_partners(torch.zeros(4, 4), torch.zeros(4), 3, 1, 5)
    with pytest.raises(ConfigError, match="k_unc"):
        select_partners(torch.zeros(4, 4), torch.zeros(4), 3, 6, 2)


# --- SDM --------------------------------------------------------------------------------------


def test_kl_target_rows_sum_to_one_also_for_cut_rows() -> None:
    sel = select_partners(torch.randn(12, 12), torch.rand(12), 5, 4, 2)
    q = row_normalise(sel.indicator)
    assert torch.allclose(q.sum(1), torch.ones(12))
    assert set(sel.indicator.sum(1).tolist()) == {5.0, 2.0}


def test_sdm_is_non_negative_and_smaller_when_mass_sits_on_partners() -> None:
    z1, z2 = _unit(6, 6, 3), _unit(6, 6, 4)
    eye = torch.eye(6)
    assert float(sdm_loss(z1, z2, eye)) >= 0.0
    aligned = float(sdm_loss(torch.eye(6), torch.eye(6), eye, kappa=10.0))
    shuffled = float(sdm_loss(torch.eye(6), torch.eye(6)[[1, 2, 3, 4, 5, 0]], eye, kappa=10.0))
    assert aligned < shuffled
    assert aligned >= -1e-6
