"""k-means++ seeding, on the whole data or on a uniform sample of it.

Arthur & Vassilvitskii, "k-means++: The Advantages of Careful Seeding", SODA 2007; the greedy
variant with several local trials per step is the one their conclusion mentions (and
scikit-learn's default). Used by :class:`dcflow.clustering.kmeans.KMeans`.
"""

from __future__ import annotations

import math

import torch

INIT_SIZE_MIN = 100_000  # k-means++ sees every point of a data set up to this size
INIT_SIZE_PER_CLUSTER = 100  # ... and at least this many points per cluster beyond it


def kmeans_plusplus(
    x: torch.Tensor, k: int, gen: torch.Generator, n_local_trials: int = 1
) -> torch.Tensor:
    """k-means++ seeding (Arthur & Vassilvitskii, 2007): each new centre ~ D(x)^2.

    Sampling by inverse CDF (a uniform draw on the cumulative ``D(x)^2``) rather than
    ``torch.multinomial``, which draws ``N`` exponentials per centre. With ``n_local_trials``
    ``L > 1``, greedy k-means++ (the variant Arthur & Vassilvitskii mention in their conclusion,
    scikit-learn's default with ``L = 2 + ln K``): ``L`` candidates are drawn per step and the
    one that lowers the potential ``sum D(x)^2`` most is kept. ``||x||^2`` is computed once; the
    distances are bit-identical to :func:`squared_distances`. Cost ``O(N k L d)``: callers with
    large ``N`` pass a sample (:func:`init_sample`).
    """
    if n_local_trials < 1:
        raise ValueError(f"n_local_trials={n_local_trials} must be >= 1")
    n = x.shape[0]
    xx = (x * x).sum(1, keepdim=True)

    def dist(idx: torch.Tensor) -> torch.Tensor:  # [N, L]: D^2 to the points x[idx]
        c = x[idx]
        return (xx - 2.0 * (x @ c.T) + (c * c).sum(1)[None, :]).clamp_min_(0.0)

    first = torch.randint(n, (1,), generator=gen, device="cpu").to(x.device)
    centers = [x[first[0]]]
    closest = dist(first)[:, 0]
    for _ in range(1, k):
        cum = torch.cumsum(closest, 0)
        u = torch.rand(n_local_trials, generator=gen, device="cpu", dtype=cum.dtype).to(x.device)
        if float(cum[-1]) > 0:
            cand = torch.searchsorted(cum, u * cum[-1], right=True).clamp_max(n - 1)
        else:  # every point is a centre already: uniform
            cand = (u.double() * n).long() % n
        if n_local_trials == 1:
            best = cand[0]
            closest = torch.minimum(closest, dist(cand)[:, 0])
        else:
            trial = torch.minimum(closest[:, None], dist(cand))  # [N, L]
            j = trial.sum(0).argmin()
            best, closest = cand[j], trial[:, j].contiguous()
        centers.append(x[best])
    return torch.stack(centers)


def local_trials(n_clusters: int, n_local_trials: int | None) -> int:
    """``n_local_trials``, or scikit-learn's greedy default ``2 + int(ln K)`` for ``None``."""
    return 2 + int(math.log(n_clusters)) if n_local_trials is None else n_local_trials


def default_init_size(n_clusters: int) -> int:
    """Points k-means++ seeds on by default: ``max(100_000, 100 K)``.

    100 points per cluster on average estimate each cluster's ``D(x)^2`` mass well enough for
    seeding, and the 100,000 floor keeps every data set up to that size (all of dcflow's
    embeddings, MNIST's 70,000 included) on the exact full-data seeding.
    """
    return max(INIT_SIZE_MIN, INIT_SIZE_PER_CLUSTER * n_clusters)


def init_sample(
    x: torch.Tensor, size: int, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A uniform sample of ``size`` rows of ``x`` without replacement, and their indices.

    ``(x, None)`` when ``x`` has at most ``size`` rows: no random numbers are drawn then, so
    small data sets seed exactly as on the full data.
    """
    n = x.shape[0]
    if n <= size:
        return x, None
    idx = torch.randperm(n, generator=gen, device="cpu")[:size].to(x.device)
    return x[idx], idx
