"""SCAN over-clustering: train ``K' > K`` clusters, merge them on the mined-neighbour graph.

A dcflow option (``scan.overcluster``), not in SCAN or RUC. SCAN's entropy term pushes all K
clusters toward equal size (docs/specs/ruc.md pitfall 6). On an imbalanced pool (USPS: class 0 holds
16.7 %, class 5 7.7 %) the K-way optimum splits the largest class and merges two small ones, and
RUC's refine cannot split a merged cluster. With ``K' = round(overcluster * K)`` the uniform prior
asks for fragments smaller than every class, so no fragment needs to hold two classes; the fragments
are then merged by average linkage on the graph of the mined neighbours
(:func:`dcflow.clustering.merge.merge_fine`), and a K-way linear head is fitted on the frozen
features to the merged probabilities ``q_k = sum_{j in group k} p_j`` so that self-labelling and RUC
continue with an ordinary K-way model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dcflow.clustering.merge import merge_fine


def merge_fragments(proba: torch.Tensor, neighbors: torch.Tensor, k: int) -> torch.Tensor:
    """Group the ``K'`` fragments of ``proba`` ``[N, K']`` into ``k`` clusters.

    Args:
        proba: fine soft assignments.
        neighbors: ``[N, m]`` neighbour indices (self excluded).
        k: clusters wanted.

    Returns:
        ``[K']`` int64 group of each fragment. A fragment that is nobody's argmax joins the group
        of the sample it claims most strongly.
    """
    k_fine = proba.shape[1]
    fine = proba.argmax(1)
    dense, groups_used = merge_fine(fine, neighbors, k, k_fine)
    used = torch.bincount(fine, minlength=k_fine) > 0
    groups = torch.empty(k_fine, dtype=torch.long, device=proba.device)
    groups[used] = groups_used
    for j in torch.nonzero(~used).flatten().tolist():
        groups[j] = groups_used[dense[proba[:, j].argmax()]]
    return groups


def fit_head(
    feats: torch.Tensor, targets: torch.Tensor, steps: int = 300, lr: float = 0.05
) -> tuple[nn.Linear, float]:
    """A linear head ``[d] -> [K]`` minimising cross-entropy to soft ``targets`` on ``feats``.

    Full-batch Adam on a convex problem (the features are fixed); starts from zero weights.

    Returns:
        The head and the fraction of samples where ``argmax head == argmax targets``.
    """
    head = nn.Linear(feats.shape[1], targets.shape[1]).to(feats.device)
    nn.init.zeros_(head.weight)
    nn.init.zeros_(head.bias)
    scale = feats.std(0).mean().clamp_min(1e-6)
    x = feats.detach() / scale
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    for _ in range(steps):
        loss = -(targets * F.log_softmax(head(x), dim=1)).sum(1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        head.weight /= scale  # fold the feature scaling into the weights
        agree = float((head(feats).argmax(1) == targets.argmax(1)).float().mean())
    return head, agree
