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


class KMeans:
    """k-means clustering.

    Args:
        n_clusters: K.
        n_init: restarts; the run with the lowest inertia wins.
        max_iter: Lloyd iterations per restart.
        tol: stop when the centres move less than ``tol`` (sum of squared shifts).
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
        tol: float = 1e-6,
        seed: int = 0,
    ) -> None:
        self.n_clusters = n_clusters
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.seed = seed

    def _lloyd(
        self, x: torch.Tensor, centers: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, float, int]:
        labels = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
        it = 0
        for it in range(1, self.max_iter + 1):  # noqa: B007 - it is reported as n_iter_
            labels = squared_distances(x, centers).argmin(1)
            sums = torch.zeros_like(centers).index_add_(0, labels, x)
            counts = torch.bincount(labels, minlength=self.n_clusters).to(x.dtype)
            empty = counts == 0
            new = sums / counts.clamp_min(1)[:, None]
            new[empty] = centers[empty]
            shift = float(((new - centers) ** 2).sum())
            centers = new
            if shift <= self.tol:
                break
        d = squared_distances(x, centers)
        labels = d.argmin(1)
        inertia = float(d.gather(1, labels[:, None]).sum())
        return centers, labels, inertia, it

    @torch.no_grad()
    def fit(self, x: torch.Tensor) -> KMeans:
        """Cluster ``x`` ``[N, d]``."""
        if not 1 <= self.n_clusters <= x.shape[0]:
            raise ValueError(f"n_clusters={self.n_clusters} must be in [1, {x.shape[0]}]")
        gen = torch.Generator().manual_seed(self.seed)
        best: tuple[torch.Tensor, torch.Tensor, float, int] | None = None
        for _ in range(self.n_init):
            result = self._lloyd(x, kmeans_plusplus(x, self.n_clusters, gen))
            if best is None or result[2] < best[2]:
                best = result
        assert best is not None
        self.cluster_centers_, self.labels_, self.inertia_, self.n_iter_ = best
        return self

    def fit_predict(self, x: torch.Tensor) -> torch.Tensor:
        """Fit and return the labels."""
        return self.fit(x).labels_

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Nearest-centre labels for new points."""
        return squared_distances(x, self.cluster_centers_).argmin(1)
