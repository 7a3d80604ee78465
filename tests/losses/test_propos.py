"""ProPos / HaDis losses against the closed forms and bounds of hadis.md section 8."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from dcflow.losses.hsd import hsd_loss
from dcflow.losses.propos import alignment_loss, batch_prototypes, prototype_scattering_loss


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_prototypes_unit_rows_for_present_and_zero_rows_for_absent() -> None:
    z, labels = _rand(12, 5), torch.tensor([0, 0, 1, 3] * 3)
    mu, present = batch_prototypes(z, labels, 6)
    assert mu.shape == (6, 5)
    assert present.tolist() == [True, True, False, True, False, False]
    torch.testing.assert_close(mu[present].norm(dim=1), torch.ones(3))
    assert torch.count_nonzero(mu[~present]) == 0
    expected = F.normalize(F.normalize(z[labels == 3], dim=1).mean(0), dim=0)
    torch.testing.assert_close(mu[3], expected)


def test_psl_is_ln_k_when_all_prototypes_coincide() -> None:
    k_clusters = 7
    v = F.normalize(_rand(1, 8), dim=1)
    q, k = v.repeat(14, 1) * 3.0, v.repeat(14, 1)  # q is not normalised upstream
    labels = torch.arange(14) % k_clusters
    loss = prototype_scattering_loss(q, k, labels, k_clusters, temperature=0.5)
    assert loss.item() == pytest.approx(math.log(k_clusters), abs=1e-5)


@pytest.mark.parametrize("tau", [0.5, 0.2])
def test_psl_orthonormal_closed_form(tau: float) -> None:
    eye = torch.eye(10)
    loss = prototype_scattering_loss(eye * 2.0, eye, torch.arange(10), 10, temperature=tau)
    expected = -1 / tau + math.log(math.exp(1 / tau) + 9)
    assert loss.item() == pytest.approx(expected, abs=1e-5)
    if tau == 0.5:
        assert loss.item() == pytest.approx(0.797, abs=1e-3)


def test_psl_nonnegative_and_gradient_only_through_online() -> None:
    for seed in range(5):
        q = _rand(32, 6, seed=seed).requires_grad_(True)
        k = F.normalize(_rand(32, 6, seed=seed + 100), dim=1).requires_grad_(True)
        labels = torch.randint(0, 5, (32,), generator=torch.Generator().manual_seed(seed))
        loss = prototype_scattering_loss(q, k, labels, 5)
        assert loss.item() >= 0
        loss.backward()
        assert q.grad is not None and q.grad.abs().sum() > 0
        assert k.grad is None


def test_absent_clusters_do_not_change_psl() -> None:
    q, k = _rand(20, 6), F.normalize(_rand(20, 6, seed=1), dim=1)
    labels = torch.arange(20) % 4
    exact4 = prototype_scattering_loss(q, k, labels, 4, absent_logit=None)
    exact9 = prototype_scattering_loss(q, k, labels, 9, absent_logit=None)
    torch.testing.assert_close(exact4, exact9)
    # upstream's -10 logit changes the value by at most 5 * e^-10 per row
    upstream9 = prototype_scattering_loss(q, k, labels, 9)
    assert upstream9.item() == pytest.approx(exact4.item(), abs=5 * math.exp(-10))
    assert upstream9.item() != exact4.item()


def test_alignment_bounds_and_minimum() -> None:
    k = F.normalize(_rand(16, 8), dim=1)
    assert alignment_loss(3.0 * k, k).item() == pytest.approx(-2.0, abs=1e-6)
    assert alignment_loss(-k, k).item() == pytest.approx(2.0, abs=1e-6)
    for seed in range(5):
        val = alignment_loss(_rand(16, 8, seed=seed), k).item()
        assert -2.0 <= val <= 2.0


def test_hsd_is_ln2_with_zero_gradient_when_student_equals_teacher() -> None:
    t = F.normalize(_rand(24, 8), dim=1)
    s = t.clone().requires_grad_(True)
    loss = hsd_loss(s, t)
    assert loss.item() == pytest.approx(math.log(2), abs=1e-5)
    loss.backward()
    assert s.grad is not None and s.grad.abs().max().item() == 0.0


def test_hsd_nonnegative_and_differentiable_on_random_inputs() -> None:
    for seed in range(5):
        s = _rand(16, 8, seed=seed).requires_grad_(True)
        loss = hsd_loss(s, _rand(16, 8, seed=seed + 50))
        assert loss.ndim == 0 and loss.item() >= 0
        loss.backward()
        assert s.grad is not None and torch.isfinite(s.grad).all()


def test_hsd_below_ln2_when_only_the_negative_is_violated() -> None:
    t = torch.eye(3)  # three orthogonal teachers, pairwise distance sqrt(2)
    s = t.clone()
    s[1] = F.normalize(t[1] + 0.8 * t[0], dim=0)  # student 1 drifts towards anchor 0
    per_anchor = hsd_loss(s, t, reduction="none")
    # anchor 0: its only positive is itself (w_p = 0); hardest negative s_1 is closer than t_1
    assert per_anchor[0].item() < math.log(2) - 1e-3
    assert per_anchor.shape == (3,)


def test_hsd_without_negatives_is_finite_in_half_precision() -> None:
    t = F.normalize(_rand(1, 8), dim=1)  # one anchor: no negative at all
    s = F.normalize(_rand(1, 8, seed=3), dim=1)
    single = hsd_loss(s.half(), t.half())
    assert torch.isfinite(single)
    batch = hsd_loss(_rand(8, 4).half(), _rand(8, 4, seed=9).half())
    assert batch.dtype == torch.float32 and torch.isfinite(batch)
