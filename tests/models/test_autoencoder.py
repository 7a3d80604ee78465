from __future__ import annotations

import pytest
import torch
from torch import nn

from dcflow.models import AutoEncoder


@pytest.fixture
def model() -> AutoEncoder:
    torch.manual_seed(0)
    return AutoEncoder([64, 32, 16, 10])


def test_biases_are_zero_at_init(model: AutoEncoder) -> None:
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 6
    for lin in linears:
        assert torch.count_nonzero(lin.bias) == 0
        bound = (1.0 / lin.in_features) ** 0.5
        assert lin.weight.abs().max() <= bound


def test_layer_layout(model: AutoEncoder) -> None:
    enc = [m for m in model.encoder if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in enc] == [(64, 32), (32, 16), (16, 10)]
    assert not isinstance(model.encoder[-1], nn.ReLU)  # linear code
    assert not isinstance(model.decoder[-1], nn.ReLU)  # linear output


def test_output_shape(model: AutoEncoder) -> None:
    assert model(torch.rand(5, 64)).shape == (5, 64)
    assert model.encoder(torch.rand(5, 64)).shape == (5, 10)


def test_embed_matches_encoder_and_restores_mode(model: AutoEncoder) -> None:
    x = torch.rand(37, 64)
    model.train()
    z = model.embed(x, batch_size=8)
    assert model.training
    model.eval()
    with torch.no_grad():
        assert torch.allclose(z, model.encoder(x), atol=1e-6)
    assert not z.requires_grad


def test_needs_input_and_code_size() -> None:
    with pytest.raises(ValueError):
        AutoEncoder([64])


def test_loss_goes_down_in_a_few_sgd_steps(model: AutoEncoder) -> None:
    x = torch.rand(64, 64, generator=torch.Generator().manual_seed(1))
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    losses = []
    for _ in range(20):
        loss = nn.functional.mse_loss(model(x), x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
