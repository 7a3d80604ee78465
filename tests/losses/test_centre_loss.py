from __future__ import annotations

import pytest
import torch

from dcflow.losses import per_sample_centre_loss, weighted_centre_loss


def _case() -> tuple[torch.Tensor, torch.Tensor]:
    z = torch.tensor([[1.0, 0.0], [2.0, 2.0]], requires_grad=True)
    targets = torch.zeros(2, 2)
    return z, targets


def test_per_sample_loss_is_mean_squared_distance() -> None:
    z, targets = _case()
    assert per_sample_centre_loss(z, targets).tolist() == pytest.approx([0.5, 4.0])


@pytest.mark.parametrize(
    ("weights", "expected"),
    [([1.0, 1.0], (0.5 + 4.0) / 2), ([1.0, 0.0], 0.5), ([0.0, 1.0], 4.0), ([0.0, 0.0], 0.0)],
)
def test_closed_form_values(weights: list[float], expected: float) -> None:
    z, targets = _case()
    loss = weighted_centre_loss(z, targets, torch.tensor(weights)).detach()
    assert float(loss) == pytest.approx(expected)


def test_all_zero_weights_give_zero_loss_and_finite_gradient() -> None:
    z = torch.randn(8, 10, requires_grad=True)
    loss = weighted_centre_loss(z, torch.randn(8, 10), torch.zeros(8))
    loss.backward()
    assert loss.item() == 0.0
    assert z.grad is not None
    assert torch.isfinite(z.grad).all()
    assert torch.count_nonzero(z.grad) == 0


def test_all_one_weights_equal_plain_mean() -> None:
    gen = torch.Generator().manual_seed(0)
    z, targets = torch.randn(16, 10, generator=gen), torch.randn(16, 10, generator=gen)
    loss = weighted_centre_loss(z, targets, torch.ones(16))
    assert float(loss) == pytest.approx(float(per_sample_centre_loss(z, targets).mean()), rel=1e-6)


def test_gradient_flows_only_through_weighted_samples() -> None:
    z, targets = _case()
    weighted_centre_loss(z, targets, torch.tensor([1.0, 0.0])).backward()
    assert z.grad is not None
    # d/dz0 of ((z00^2 + z01^2) / 2) / 1 = z0 = [1, 0]; sample 1 gets nothing
    assert z.grad.tolist() == [[1.0, 0.0], [0.0, 0.0]]
