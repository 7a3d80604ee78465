"""Fully connected autoencoder of DEC / ASPC-DA.

Encoder ``D -> h1 -> ... -> d`` and mirrored decoder, ReLU after every hidden layer, linear code and
output (Xie et al., ICML 2016; Guo et al., TKDE 2019). Weights use PyTorch's default uniform
``U(+-sqrt(1/fan_in))`` and biases start at 0, which docs/specs/aspc-da.md §4.2 (pitfall 10) needs
for stable SGD at lr 1.0.
"""

from __future__ import annotations

import torch
from torch import nn

from dcflow.data.bank import Images


def _mlp(dims: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
        lin = nn.Linear(d_in, d_out)
        nn.init.zeros_(lin.bias)
        layers.append(lin)
        if i < len(dims) - 2:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


@torch.no_grad()
def embed(encoder: nn.Module, x: Images, batch_size: int = 4096) -> torch.Tensor:
    """Codes ``[N, d]`` of ``x`` ``[N, D]`` by ``encoder``, batched, in eval mode."""
    was = encoder.training
    encoder.eval()
    z = torch.cat([encoder(x[i : i + batch_size]) for i in range(0, x.shape[0], batch_size)])
    encoder.train(was)
    return z


class AutoEncoder(nn.Module):
    """MLP autoencoder on flattened images.

    Args:
        dims: ``[D, h1, ..., d]``: input size, hidden sizes, code size.
    """

    def __init__(self, dims: list[int]) -> None:
        super().__init__()
        if len(dims) < 2:
            raise ValueError("dims needs at least input and code sizes")
        self.dims = list(dims)
        self.encoder = _mlp(dims)
        self.decoder = _mlp(dims[::-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruct ``x`` ``[B, D]`` -> ``[B, D]``."""
        return self.decoder(self.encoder(x))

    def embed(self, x: Images, batch_size: int = 4096) -> torch.Tensor:
        """Codes ``[N, d]`` of ``x`` ``[N, D]``, batched, in eval mode."""
        return embed(self.encoder, x, batch_size)
