"""Label-free temperature scaling: the fitted T meets its target and never moves an argmax."""

from __future__ import annotations

import torch

from dcflow.clustering.calibration import T_MIN, agreement_temperature, ensemble_proba


def _pair(n: int = 400, k: int = 5, flip: float = 0.1, scale: float = 0.3) -> tuple:
    gen = torch.Generator().manual_seed(0)
    truth = torch.randint(0, k, (n,), generator=gen)
    z1 = scale * (3 * torch.nn.functional.one_hot(truth, k) + torch.randn(n, k, generator=gen))
    other = truth.clone()
    flipped = torch.rand(n, generator=gen) < flip
    other[flipped] = (truth[flipped] + 1) % k
    z2 = scale * (3 * torch.nn.functional.one_hot(other, k) + torch.randn(n, k, generator=gen))
    return z1, z2


def test_mean_confidence_at_t_equals_the_agreement_rate() -> None:
    z1, z2 = _pair()
    agreement = float((z1.argmax(1) == z2.argmax(1)).float().mean())
    t = agreement_temperature(z1, z2)
    assert abs(float(ensemble_proba(z1, z2, t).max(1).values.mean()) - agreement) < 1e-4


def test_under_confident_logits_are_sharpened() -> None:
    z1, z2 = _pair(scale=0.2)  # small logits: softmax far below the ~0.9 agreement
    before = ensemble_proba(z1, z2).max(1).values.mean()
    t = agreement_temperature(z1, z2)
    after = ensemble_proba(z1, z2, t)
    assert t < 1 and after.max(1).values.mean() > before
    for z in (z1, z2):  # each network's own prediction is unchanged by a temperature
        assert torch.equal(torch.softmax(z / t, 1).argmax(1), z.argmax(1))


def test_full_agreement_clips_at_the_lowest_temperature() -> None:
    z1, _ = _pair()
    assert agreement_temperature(z1, z1.clone()) == T_MIN
