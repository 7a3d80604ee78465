"""k-means in torch with an sklearn-like API (``fit``, ``fit_predict``, ``cluster_centers_``).

Lloyd iterations with k-means++ seeding, ``n_init`` restarts keeping the lowest inertia, computed on
whatever device the data lives on. Squared distances use ``||x||^2 - 2 x.c + ||c||^2`` clamped at 0
(ASPC-DA spec, pitfall 4).
"""

from __future__ import annotations

import torch


def squared_distances(x: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """``[N, K]`` squared Euclidean distances, clamped at 0 against float round-off."""
    d = (x * x).sum(1, keepdim=True) - 2.0 * x @ centers.T + (centers * centers).sum(1)[None, :]
    return d.clamp_min_(0.0)


def kmeans_plusplus(x: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    """k-means++ seeding (Arthur & Vassilvitskii, 2007): each new centre ~ D(x)^2."""
    n = x.shape[0]
    first = int(torch.randint(n, (1,), generator=gen, device="cpu").item())
    centers = [x[first]]
    closest = squared_distances(x, x[first : first + 1]).squeeze(1)
    for _ in range(1, k):
        probs = closest / closest.sum() if closest.sum() > 0 else torch.full_like(closest, 1 / n)
        idx = int(torch.multinomial(probs.cpu(), 1, generator=gen).item())
        centers.append(x[idx])
        closest = torch.minimum(closest, squared_distances(x, x[idx : idx + 1]).squeeze(1))
    return torch.stack(centers)


_Result = tuple[torch.Tensor, torch.Tensor, float, int]
_MAX_BATCH = 50_000_000  # entries of the [R, N, K] distance tensor computed at once


def _batched_sq_dist(x: torch.Tensor, xx: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """``[R, N, K]`` squared distances of ``x`` ``[N, d]`` to ``centers`` ``[R, K, d]``, >= 0."""
    cc = (centers * centers).sum(2)[:, None, :]
    return torch.baddbmm(xx + cc, x.expand(centers.shape[0], -1, -1), centers.transpose(1, 2),
                         alpha=-2.0).clamp_min_(0.0)  # fmt: skip


class KMeans:
    """k-means clustering.

    Args:
        n_clusters: K.
        n_init: restarts; the run with the lowest inertia wins.
        max_iter: Lloyd iterations per restart.
        tol: stop when the centres' squared shift is below ``tol`` times the mean per-feature
            variance of the data (scikit-learn's rule), or when no label changes.
        seed: seed of the restarts' generator.

    Attributes:
        cluster_centers_: ``[K, d]`` centres (same device and dtype as the data).
        labels_: ``[N]`` int64 assignments.
        inertia_: sum of squared distances to the assigned centres.
        n_iter_: Lloyd iterations of the winning restart.
    """

    def __init__(
        self,
        n_clusters: int,
        n_init: int = 20,
        max_iter: int = 300,
        tol: float = 1e-4,
        seed: int = 0,
    ) -> None:
        self.n_clusters = n_clusters
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.seed = seed

    def _lloyd(self, x: torch.Tensor, centers: torch.Tensor) -> list[_Result]:
        """Lloyd iterations of ``R`` restarts at once: ``centers`` is ``[R, K, d]``.

        A restart stops when its labels no longer change or its centres move less than ``tol``;
        the others go on. Distances of all restarts are one batched matmul ``[R, N, K]``.
        """
        r, k, _ = centers.shape
        xx = (x * x).sum(1)[None, :, None]
        active = torch.ones(r, dtype=torch.bool, device=x.device)
        n_iter = torch.zeros(r, dtype=torch.long, device=x.device)
        prev: torch.Tensor | None = None
        tol = self.tol * float(x.var(0).mean()) if x.shape[0] > 1 else 0.0
        for it in range(1, self.max_iter + 1):
            labels = _batched_sq_dist(x, xx, centers).argmin(2)  # [R, N]
            onehot = torch.zeros(r, x.shape[0], k, dtype=x.dtype, device=x.device)
            onehot.scatter_(2, labels[..., None], 1.0)
            counts = onehot.sum(1)  # [R, K]
            new = torch.bmm(onehot.transpose(1, 2), x.expand(r, -1, -1))
            new = new / counts.clamp_min(1)[..., None]
            new = torch.where((counts == 0)[..., None], centers, new)
            shift = ((new - centers) ** 2).sum((1, 2))
            done = shift <= tol
            if prev is not None:
                done |= (labels == prev).all(1)
            centers = torch.where(active[:, None, None], new, centers)
            n_iter = torch.where(active, torch.full_like(n_iter, it), n_iter)
            active &= ~done
            prev = labels
            if not bool(active.any()):
                break
        d = _batched_sq_dist(x, xx, centers)
        labels = d.argmin(2)
        inertia = d.gather(2, labels[..., None]).sum((1, 2))
        return [(centers[i], labels[i], float(inertia[i]), int(n_iter[i])) for i in range(r)]

    @torch.no_grad()
    def fit(self, x: torch.Tensor) -> KMeans:
        """Cluster ``x`` ``[N, d]``."""
        if not 1 <= self.n_clusters <= x.shape[0]:
            raise ValueError(f"n_clusters={self.n_clusters} must be in [1, {x.shape[0]}]")
        gen = torch.Generator().manual_seed(self.seed)
        seeds = [kmeans_plusplus(x, self.n_clusters, gen) for _ in range(self.n_init)]
        chunk = max(1, int(_MAX_BATCH // max(1, x.shape[0] * self.n_clusters)))
        results: list[_Result] = []
        for i in range(0, self.n_init, chunk):
            results += self._lloyd(x, torch.stack(seeds[i : i + chunk]))
        best = results[0]
        for result in results[1:]:  # the first restart with the lowest inertia wins
            if result[2] < best[2]:
                best = result
        self.cluster_centers_, self.labels_, self.inertia_, self.n_iter_ = best
        return self

    def fit_predict(self, x: torch.Tensor) -> torch.Tensor:
        """Fit and return the labels."""
        return self.fit(x).labels_

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Nearest-centre labels for new points."""
        return squared_distances(x, self.cluster_centers_).argmin(1)
