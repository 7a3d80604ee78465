"""ULDC per-batch confident-partner selection: the uncertainty-shaped indicator.

docs/specs/uldc.md §4.3e.

Each view-1 anchor ``i`` marks its ``k_sim`` most similar view-2 partners (row ``i`` of ``S``);
the ``k_unc`` anchors with the largest uncertainty keep only their ``k_cut`` MOST SIMILAR partners.
Upstream took the top ``k_cut`` of a 0/1 row, so which partners survived was tie-breaking order
(pitfall 3); here the cut keeps the largest similarities, as intended. No labels are involved.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dcflow.errors import ConfigError


@dataclass(frozen=True)
class PartnerSelection:
    """Result of one batch's selection.

    Attributes:
        indicator: ``[B, B]`` float 0/1 matrix ``Y``.
        uncertain: ``[B]`` bool, the ``k_unc`` anchors whose rows were cut.
    """

    indicator: torch.Tensor
    uncertain: torch.Tensor


def check_counts(k_sim: int, k_unc: int, k_cut: int, batch: int) -> None:
    """Raise :class:`ConfigError` unless ``1 <= k_cut <= k_sim <= batch`` and ``k_unc <= batch``."""
    if not 1 <= k_cut <= k_sim <= batch:
        raise ConfigError(f"need 1 <= k_cut ({k_cut}) <= k_sim ({k_sim}) <= batch ({batch})")
    if not 0 <= k_unc <= batch:
        raise ConfigError(f"need 0 <= k_unc ({k_unc}) <= batch ({batch})")


def select_partners(
    s: torch.Tensor, u: torch.Tensor, k_sim: int, k_unc: int, k_cut: int
) -> PartnerSelection:
    """Build the indicator ``Y`` from similarities and uncertainties (no gradient).

    Args:
        s: ``[B, B]`` cross-view similarities (row = view-1 anchor, column = view-2 partner).
        u: ``[B]`` per-anchor uncertainty.
        k_sim: partners per anchor.
        k_unc: number of most uncertain anchors whose rows are cut.
        k_cut: partners kept for those anchors (the most similar ones).

    Returns:
        A :class:`PartnerSelection`; ``Y`` has ``B k_sim - k_unc (k_sim - k_cut)`` ones.
    """
    b = s.shape[0]
    check_counts(k_sim, k_unc, k_cut, b)
    s, u = s.detach(), u.detach()
    order = s.topk(k_sim, dim=1).indices  # [B, k_sim], most similar first
    keep = torch.full((b,), k_sim, dtype=torch.long, device=s.device)
    uncertain = torch.zeros(b, dtype=torch.bool, device=s.device)
    if k_unc > 0:
        uncertain[u.topk(k_unc).indices] = True
    keep[uncertain] = k_cut
    rank = torch.arange(k_sim, device=s.device).expand(b, k_sim)
    y = torch.zeros_like(s)
    y.scatter_(1, order, (rank < keep[:, None]).to(s.dtype))
    return PartnerSelection(y, uncertain)
