"""Self-CC selection: the eta schedule, level-1 confident selection and the level-2 GMM division.

Wang et al., "Self-Correcting Clustering", IEEE TKDE 2025; docs/specs/self-cc.md §4.2-4.4.
Level 1 keeps the top-eta most confident members per cluster as noisy labelled data; level 2 fits
a two-component Gaussian mixture to the classifiers' per-view losses and splits the selection into
"labelled" (trusted) and "unlabelled" (suspected misassignments).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
from sklearn.mixture import GaussianMixture

StopRule = Literal[">=", ">"]


def eta_schedule(eta0: float, step: float, stop: StopRule = ">=") -> list[float]:
    """Selection ratios ``eta_t = eta0 + t * step`` until the stop rule fires.

    docs/specs/self-cc.md §4.2.

    Multiplied, never accumulated, and rounded to 9 decimals (pitfall 7): (0.6, 0.1, ``>=``) gives
    4 values; (0.6, 0.025, ``>``) gives 17 ending at 1.0.

    Args:
        eta0: first ratio in (0, 1].
        step: increment > 0.
        stop: stop when ``eta_t >= 1`` (USPS, STL, CIFAR) or ``eta_t > 1`` (MNIST).
    """
    if step <= 0:
        raise ValueError("step must be > 0")
    out: list[float] = []
    for t in range(10_000):
        eta = round(eta0 + t * step, 9)
        if eta > 1.0 or (stop == ">=" and eta >= 1.0):
            break
        out.append(eta)
    return out


def quota(eta: float, n: int) -> int:
    """``floor(eta * n)`` after rounding to 9 decimals, so 0.29 * 100 gives 29, not 28."""
    return int(math.floor(round(eta * n, 9)))


def per_cluster_fraction(u: torch.Tensor, eta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Top ``floor(eta |C_k|)`` members of each hard cluster by ``u_ik`` (USPS selector, 4.3).

    Args:
        u: ``[N, K]`` memberships (or log-memberships: only the order matters).
        eta: selection ratio.

    Returns:
        ``indices`` ``[S]`` int64 and ``pseudo_labels`` ``[S]`` int64, grouped by cluster; the
        set is disjoint and ``argmax u_i == pseudo_label_i`` for every selected ``i``.
    """
    hard = u.argmax(1)
    idx, lab = [], []
    for k in range(u.shape[1]):
        members = torch.nonzero(hard == k).squeeze(1)
        take = quota(eta, members.numel())
        if take == 0:  # empty or tiny cluster (pitfall 13)
            continue
        order = torch.argsort(u[members, k], descending=True, stable=True)[:take]
        idx.append(members[order])
        lab.append(torch.full((take,), k, dtype=torch.long, device=u.device))
    if not idx:
        empty = torch.zeros(0, dtype=torch.long, device=u.device)
        return empty, empty.clone()
    return torch.cat(idx), torch.cat(lab)


def per_column_topk(
    u: torch.Tensor, eta: float, per_cluster: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top ``floor(eta * N/K)`` of *all* samples by ``u_ik`` for each k (MNIST/STL/CIFAR, 4.3).

    A sample may be picked for several clusters. ``per_cluster`` overrides ``N/K`` (upstream
    hard-codes 6000 / 1300 / 5000); by default it is computed from N.
    """
    n, k = u.shape
    take = min(n, quota(eta, per_cluster or n // k))
    top = torch.argsort(u, dim=0, descending=True, stable=True)[:take]  # [take, K]
    labels = torch.arange(k, device=u.device).expand(take, k)
    return top.T.reshape(-1), labels.T.reshape(-1)


def clean_posterior(
    losses: torch.Tensor,
    tol: float = 1e-3,
    reg_covar: float = 5e-4,
    seed: int = 0,
    rule: Literal["low_mean", "populous"] = "low_mean",
    fits: int = 1,
) -> torch.Tensor:
    """Posterior of the clean component of a 1-D two-component GMM (docs/specs/self-cc.md §4.4.2).

    Losses are min-max normalised to [0, 1] first. ``low_mean`` (USPS/MNIST): one fit, the clean
    component has the smaller mean. ``populous`` (STL/CIFAR): ``fits`` k-means-initialised fits
    (random states ``seed .. seed + fits - 1``), the most imbalanced one is kept and its larger
    component is the clean one. With fewer than two distinct values every sample is clean.

    Args:
        losses: per-view losses, any shape ``[...]``.
        tol: EM tolerance.
        reg_covar: variance floor.
        seed: random state of the (first) fit.
        rule: which component is clean (above).
        fits: number of fits under ``populous``.

    Returns:
        Posteriors ``[...]`` float32 on the device of ``losses``.
    """
    flat = losses.detach().double().flatten().cpu().numpy()
    span = flat.max() - flat.min() if flat.size else 0.0
    if flat.size < 2 or span <= 0:
        return torch.ones_like(losses, dtype=torch.float32)
    x = ((flat - flat.min()) / span)[:, None]
    if rule == "low_mean":
        gmm = GaussianMixture(2, max_iter=1000, tol=tol, reg_covar=reg_covar, random_state=seed)
        gmm.fit(x)
        clean = int(np.argmin(gmm.means_[:, 0]))
    else:
        candidates = [
            GaussianMixture(
                2, max_iter=1000, tol=tol, reg_covar=reg_covar, random_state=seed + i
            ).fit(x)  # sklearn's default init_params is "kmeans"
            for i in range(max(1, fits))
        ]
        gmm = max(candidates, key=lambda g: float(abs(g.weights_[0] - g.weights_[1])))
        clean = int(np.argmax(gmm.weights_))
    post = gmm.predict_proba(x)[:, clean]
    return torch.from_numpy(post).float().reshape(losses.shape).to(losses.device)


def divide(
    posterior: torch.Tensor, rule: Literal["vote", "mean"] = "vote", threshold: float = 0.5
) -> tuple[torch.Tensor, torch.Tensor]:
    """Labelled / unlabelled split of the selection from per-view clean posteriors (4.4.3).

    Args:
        posterior: ``[S, A]`` clean-component posteriors of every view.
        rule: ``vote``: labelled iff at least half the views have ``p >= 0.5`` (USPS/MNIST);
            ``mean``: labelled iff ``mean_a p > threshold`` (STL/CIFAR use 0.2).
        threshold: threshold of the ``mean`` rule.

    Returns:
        ``labelled`` ``[S]`` bool mask and weights ``w = mean_a p`` ``[S]``.
    """
    w = posterior.mean(1)
    if rule == "vote":
        labelled = (posterior >= 0.5).float().mean(1) >= 0.5
    else:
        labelled = w > threshold
    return labelled, w


def transition_sigma(transition: torch.Tensor, scale: float = 100.0) -> float:
    """The intended weight of the unlabelled loss from an estimated transition matrix (4.4.4).

    For each row, the ``K-1`` off-diagonal entries times ``scale`` are softmaxed into ``q``; ``q``
    is compared by cross-entropy with every "raise a subset P" pattern of the same total (1 outside
    P, ``(s - (K-1-|P|)) / |P|`` inside, softmaxed). A row whose best pattern raises all ``K-1``
    entries looks symmetric; sigma is 1 if any row does, else 0. The released code compares an
    index with a length here, so it never fires (pitfall 1).

    Args:
        transition: ``[K, K]`` estimated noise transition matrix ``T``.
        scale: the factor applied before the softmax (100 upstream).
    """
    k = transition.shape[0]
    if not 2 < k <= 16:
        raise ValueError(f"fixed_rule sigma enumerates 2^(K-1) patterns; K={k} is out of range")
    off = transition[~torch.eye(k, dtype=torch.bool)].reshape(k, k - 1).double() * scale
    q = torch.softmax(off, dim=1)
    codes = torch.arange(1, 2 ** (k - 1))
    masks = ((codes[:, None] >> torch.arange(k - 1)) & 1).bool()  # [P, K-1]
    size = masks.sum(1).double()
    s = off.sum(1)  # [K]
    inside = (s[:, None] - (k - 1 - size)[None, :]) / size[None, :]  # [K, P]
    pattern = torch.where(masks[None], inside[..., None], torch.ones(()).double())
    ce = -(q[:, None, :] * torch.log_softmax(pattern, dim=2)).sum(2)  # [K, P]
    best = ce.argmin(1)
    return float(bool((size[best] == k - 1).any()))
