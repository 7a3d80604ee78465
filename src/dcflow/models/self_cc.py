"""Self-CC networks: the clustering module (encoder + learnable centres) and RTDS classifiers.

Wang et al., "Self-Correcting Clustering", IEEE TKDE 2025; ``shared/methods/self-cc.md`` 4.1, 4.4.
"""

from __future__ import annotations

import torch
from torch import nn

from dcflow.losses.self_cc import log_membership


def mlp_classifier(dims: list[int]) -> nn.Sequential:
    """MLP ``D -> h1 -> ... -> K`` with ReLU between layers (USPS/MNIST RTDS classifiers)."""
    layers: list[nn.Module] = []
    for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
        layers.append(nn.Linear(d_in, d_out))
        if i < len(dims) - 2:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class ClusteringModule(nn.Module):
    """Feature extractor with learnable centres; fuzzy memberships in log space.

    Args:
        encoder: maps ``[B, D]`` inputs to ``[B, d]`` codes.
        centers: ``[K, d]`` initial centres (rows are centres; pitfall 4 asserts the shape).
        m: fuzzifier.
    """

    def __init__(self, encoder: nn.Module, centers: torch.Tensor, m: float) -> None:
        super().__init__()
        if centers.dim() != 2:
            raise ValueError(f"centers must be [K, d], got {list(centers.shape)}")
        self.encoder = encoder
        self.centers = nn.Parameter(centers.detach().clone().float())
        self.m = m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, K]`` log-memberships of ``x`` ``[B, D]``."""
        return log_membership(self.encoder(x), self.centers, self.m)

    @torch.no_grad()
    def infer(self, x: torch.Tensor, batch_size: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
        """Codes ``[N, d]`` and memberships ``[N, K]`` of ``x`` ``[N, D]`` in eval mode."""
        was = self.training
        self.eval()
        z = torch.cat([self.encoder(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
        self.train(was)
        return z, log_membership(z, self.centers, self.m).exp()
