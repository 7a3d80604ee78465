"""Closed-form checks of the SimCLR, SCAN and RUC losses, schedules and ECE (spec ruc.md 8)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dcflow.clustering.metrics import expected_calibration_error
from dcflow.losses.mixmatch import (
    mixup,
    mse_probs,
    ramp,
    sharpen,
    smooth_targets,
    soft_cross_entropy,
)
from dcflow.losses.ntxent import ntxent_loss
from dcflow.losses.scan import scan_loss, selflabel_loss
from dcflow.train.common import cosine_lr
from dcflow.train.ruc import RUCRefineConfig


@pytest.mark.parametrize("tau", [0.1, 0.5, 2.0])
@pytest.mark.parametrize("mode", ["one_way", "symmetric"])
def test_ntxent_identical_projections_is_log_2b_minus_1(tau: float, mode: str) -> None:
    z = F.normalize(torch.ones(4, 8), dim=1)
    loss = ntxent_loss(z, z.clone(), tau, mode)  # type: ignore[arg-type]
    assert loss.item() == pytest.approx(math.log(2 * 4 - 1), rel=1e-5)


def test_ntxent_lower_for_matching_pairs_with_orthogonal_negatives() -> None:
    eye = torch.eye(4)
    aligned = ntxent_loss(eye, eye.clone(), 0.5)
    same = F.normalize(torch.ones(4, 4), dim=1)
    assert aligned < ntxent_loss(same, same.clone(), 0.5)
    # closed form: positive logit 1/tau, 2 self-like... one positive (e^2) and 6 orthogonal (e^0)
    assert aligned.item() == pytest.approx(-math.log(math.e**2 / (math.e**2 + 6)), rel=1e-5)


def test_ntxent_symmetric_is_mean_of_both_one_way_orders() -> None:
    gen = torch.Generator().manual_seed(0)
    a = F.normalize(torch.randn(6, 5, generator=gen), dim=1)
    b = F.normalize(torch.randn(6, 5, generator=gen), dim=1)
    both = (ntxent_loss(a, b, 0.3, "one_way") + ntxent_loss(b, a, 0.3, "one_way")) / 2
    assert ntxent_loss(a, b, 0.3, "symmetric").item() == pytest.approx(both.item(), rel=1e-6)


def _onehot_logits(labels: list[int], k: int) -> torch.Tensor:
    return F.one_hot(torch.tensor(labels), k).float() * 100.0


def test_scan_loss_constructed_cases() -> None:
    k, lam = 4, 5.0
    spread = _onehot_logits([0, 1, 2, 3], k)
    total, cons, ent = scan_loss(spread, spread, lam)
    assert cons.item() == pytest.approx(0.0, abs=1e-5)
    assert total.item() == pytest.approx(-lam * math.log(k), rel=1e-5)  # the minimum
    uniform = torch.zeros(4, k)
    assert scan_loss(uniform, uniform, lam)[0].item() == pytest.approx((1 - lam) * math.log(k))
    collapsed = _onehot_logits([2, 2, 2, 2], k)
    assert scan_loss(collapsed, collapsed, lam)[0].item() == pytest.approx(0.0, abs=1e-5)


def test_selflabel_class_balanced_weights() -> None:
    # 3 confident samples of class 0 with CE 1 and 1 of class 1 with CE 0 -> 0.5 (unweighted 0.75)
    k = 2
    p = torch.tensor([[1.0, 0.0]] * 3 + [[0.0, 1.0]])
    # logits with CE exactly 1 for class 0: log-softmax(l)_0 = -1
    l0 = torch.tensor([0.0, math.log(math.e - 1)])
    logits = torch.stack([l0, l0, l0, torch.tensor([-1e4, 1e4])])
    loss, n = selflabel_loss(logits, p, 0.99)
    assert n == 4 and loss is not None
    assert loss.item() == pytest.approx(0.5, rel=1e-5)
    assert F.cross_entropy(logits, p.argmax(1)).item() == pytest.approx(0.75, rel=1e-5)
    assert selflabel_loss(logits, torch.full((4, k), 0.5), 0.99) == (None, 0)


def test_selflabel_threshold_is_strict() -> None:
    p = torch.tensor([[0.99, 0.01], [0.995, 0.005]])
    assert selflabel_loss(torch.zeros(2, 2), p, 0.99)[1] == 1


def test_label_smoothing_targets() -> None:
    t = smooth_targets(torch.tensor([3, 0]), 10, 0.5)
    assert t[0, 3].item() == pytest.approx(0.5)
    assert t[0, 0].item() == pytest.approx(0.5 / 9)
    assert round(t[0, 0].item(), 4) == 0.0556
    assert torch.allclose(t.sum(1), torch.ones(2))


def test_sharpen_and_unlabelled_loss() -> None:
    p = torch.tensor([[0.6, 0.4]])
    assert torch.allclose(sharpen(p, 0.5), torch.tensor([[0.36 / 0.52, 0.16 / 0.52]]))
    z = torch.randn(5, 3)
    assert mse_probs(z, F.softmax(z, 1)).item() == pytest.approx(0.0, abs=1e-12)
    t = F.softmax(torch.randn(5, 3), 1)
    expected = -(t * F.log_softmax(z, 1)).sum(1).mean()
    assert soft_cross_entropy(z, t).item() == pytest.approx(expected.item())


def test_mixup_is_a_convex_pairing_with_lambda_at_least_half() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.arange(8.0).view(8, 1)
    t = F.one_hot(torch.arange(8) % 3, 3).float()
    for _ in range(20):
        xm, tm, lam = mixup(x, t, 4.0, gen)
        assert 0.5 <= lam <= 1.0
        assert torch.allclose(tm.sum(1), torch.ones(8))
        partner = (xm - lam * x) / (1 - lam) if lam < 1 else x
        assert sorted(partner.round().view(-1).tolist()) == list(range(8))  # a permutation


def test_ramp_and_schedules() -> None:
    assert ramp(0, 0, 10, 200) == pytest.approx(0.1)
    assert ramp(500, 3, 10, 200) == 1.0
    assert ramp(50, 0, 10, 200) == pytest.approx(0.25)
    cfg = RUCRefineConfig(tau2=0.90, tau2_step=0.02, tau2_every=40, epochs=200)
    assert {round(cfg.tau2_at(e), 6) for e in range(200)} == {0.90, 0.92, 0.94, 0.96, 0.98}
    assert cosine_lr(0.01, 100, 200) == pytest.approx(0.005)


def test_ece_against_hand_computation() -> None:
    y = np.array([0] * 10)
    pred = np.array([0] * 8 + [1] * 2)
    proba = np.zeros((10, 2))
    proba[np.arange(10), pred] = 1.0
    assert expected_calibration_error(proba, y, pred) == pytest.approx(0.2)
    # two bins by hand: conf 0.9 (4 samples, 3 right) and 0.6 (2 samples, 1 right), 15 bins
    y2 = np.array([0, 0, 0, 0, 0, 0])
    pred2 = np.array([0, 0, 0, 1, 0, 1])
    conf = np.array([0.9, 0.9, 0.9, 0.9, 0.6, 0.6])
    p2 = np.stack([conf, 1 - conf], 1)
    p2[pred2 == 1] = p2[pred2 == 1][:, ::-1]
    hand = 4 / 6 * abs(3 / 4 - 0.9) + 2 / 6 * abs(1 / 2 - 0.6)
    assert expected_calibration_error(p2, y2, pred2) == pytest.approx(hand)
    # confidence equal to per-bin accuracy -> 0
    assert expected_calibration_error(
        np.array([[0.5, 0.5], [0.5, 0.5]]), np.array([0, 1]), np.array([0, 0])
    ) == pytest.approx(0.0)
