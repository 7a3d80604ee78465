"""k-means in torch with an sklearn-like API (``fit``, ``fit_predict``, ``cluster_centers_``).

Lloyd iterations with k-means++ seeding (Arthur & Vassilvitskii, 2007), ``n_init`` restarts keeping
the lowest inertia, computed on whatever device the data lives on; or mini-batch k-means
(Sculley, 2010). Squared distances use ``||x||^2 - 2 x.c + ||c||^2`` clamped at 0
(docs/specs/aspc-da.md pitfall 4).

Scale: every pass over the data runs in row chunks, so memory beyond the data and the labels is
``O(chunk x n_init K)`` floats, never ``N x K``; centres are updated with ``index_add_`` (CPU) or a
per-chunk one-hot matmul (CUDA, where ``index_add_``'s atomic adds would be non-deterministic),
and counts with ``bincount``. k-means++ seeds on a uniform sample of ``init_size`` points
(default ``max(100_000, 100 K)``) when ``N`` is larger, so seeding costs ``O(init_size K d)``
rather than ``O(N K d)``; below that size the whole data set is used, as before.

With ``n_init=1`` on large data, plain k-means++ often leaves a cluster without a seed; the
sampled seeding is therefore greedy by default (``2 + ln K`` candidates per step, as
scikit-learn's). ``backend="auto"`` keeps dcflow's seeding but runs scikit-learn's Cython Lloyd on
CPU tensors, which is faster there than the torch iterations, and the torch path on CUDA
(docs/results.md, "### k-means").
"""

from __future__ import annotations

from typing import Literal

import torch

from dcflow.clustering.chunks import accumulate, assign, chunk_rows, onehot_sums
from dcflow.clustering.seeding import default_init_size, init_sample, kmeans_plusplus, local_trials

Algorithm = Literal["lloyd", "minibatch"]
Backend = Literal["torch", "sklearn", "auto"]

MINIBATCH_PATIENCE = 10  # consecutive mini-batch steps below tol that stop a run


def squared_distances(x: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """``[N, K]`` squared Euclidean distances, clamped at 0 against float round-off."""
    d = (x * x).sum(1, keepdim=True) - 2.0 * x @ centers.T + (centers * centers).sum(1)[None, :]
    return d.clamp_min_(0.0)


def nonempty_clusters(labels: torch.Tensor, k: int) -> int:
    """How many of the clusters ``0..k-1`` own at least one of ``labels`` (int64 ``[N]``)."""
    return int((torch.bincount(labels, minlength=k) > 0).sum())


_Result = tuple[torch.Tensor, torch.Tensor, float, int]


class KMeans:
    """k-means clustering.

    Args:
        n_clusters: K.
        n_init: restarts; the run with the lowest inertia wins.
        max_iter: Lloyd iterations per restart, or mini-batch steps with
            ``algorithm="minibatch"``.
        tol: stop when the centres' squared shift is below ``tol`` times the mean per-feature
            variance of the data (scikit-learn's rule), or (Lloyd) when no label changes;
            mini-batch stops after ``MINIBATCH_PATIENCE`` consecutive steps below it.
        seed: seed of the restarts' generator.
        algorithm: ``"lloyd"`` (full passes) or ``"minibatch"`` (Sculley, 2010: each step
            assigns ``batch_size`` points drawn uniformly with replacement and moves each centre
            to the running mean of all points ever assigned to it, i.e. the per-centre learning
            rate ``1 / count``). The final labels and inertia come from one full pass.
        batch_size: points per mini-batch step.
        init_size: k-means++ seeds on a uniform sample of this many points when ``N`` is
            larger; ``None``: :func:`default_init_size` (``max(100_000, 100 K)``).
        n_local_trials: candidates per k-means++ step (:func:`kmeans_plusplus`); 1: plain
            k-means++; ``None`` (default): plain when seeding on all ``N`` points (data sets up
            to ``init_size``: seeds exactly as before sampling existed), scikit-learn's greedy
            ``2 + int(ln K)`` when seeding on a sample. On large data ``n_init`` is usually 1,
            and there plain k-means++ often leaves a cluster without a seed (+57 % inertia
            against scikit-learn's at 10^6 blob points, docs/results.md); the greedy trials cost
            ``L`` times the seeding on the sample, a few Lloyd passes' worth at 10^6 points.
            For ``n_init=1`` on small data pass ``local_trials(K, None)`` explicitly.
        chunk_size: rows per chunk of the distance computations; ``None``: a ``[rows, n_init K]``
            chunk of 2^19 entries on CPU, 5 10^7 on CUDA (:func:`chunk_rows`).
        backend: the engine of the Lloyd iterations; the seeding is dcflow's in every case, so
            backends differ by round-off, and where a cluster empties (scikit-learn moves its
            centre to far points, torch keeps it). ``"torch"`` (default): :meth:`_lloyd`, on the
            data's device. ``"sklearn"``: scikit-learn's Cython Lloyd
            (``KMeans(init=seeds, n_init=1, algorithm="lloyd")``, same ``max_iter`` and ``tol``)
            from each restart's seeds, on host memory. ``"auto"``: scikit-learn for CPU tensors,
            torch on other devices, the faster per device (docs/results.md, "### k-means").
            Mini-batch always runs in torch.

    Attributes:
        cluster_centers_: ``[K, d]`` centres (same device and dtype as the data).
        labels_: ``[N]`` int64 assignments.
        inertia_: sum of squared distances to the assigned centres.
        n_iter_: Lloyd iterations (or mini-batch steps) of the winning restart.
    """

    def __init__(
        self,
        n_clusters: int,
        n_init: int = 20,
        max_iter: int = 300,
        tol: float = 1e-4,
        seed: int = 0,
        *,
        algorithm: Algorithm = "lloyd",
        batch_size: int = 4096,
        init_size: int | None = None,
        n_local_trials: int | None = None,
        chunk_size: int | None = None,
        backend: Backend = "torch",
    ) -> None:
        if algorithm not in ("lloyd", "minibatch"):
            raise ValueError(f"algorithm={algorithm!r} must be 'lloyd' or 'minibatch'")
        if backend not in ("torch", "sklearn", "auto"):
            raise ValueError(f"backend={backend!r} must be 'torch', 'sklearn' or 'auto'")
        if backend == "sklearn" and algorithm == "minibatch":
            raise ValueError("backend='sklearn' serves algorithm='lloyd' only")
        if n_init < 1 or max_iter < 1 or batch_size < 1:
            raise ValueError("n_init, max_iter and batch_size must be >= 1")
        self.n_clusters = n_clusters
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.seed = seed
        self.algorithm: Algorithm = algorithm
        self.batch_size = batch_size
        self.init_size = init_size
        if n_local_trials is not None and n_local_trials < 1:
            raise ValueError(f"n_local_trials={n_local_trials} must be >= 1 or None")
        self.n_local_trials = n_local_trials
        self.chunk_size = chunk_size
        self.backend: Backend = backend

    def resolved_backend(self, device: torch.device) -> Literal["torch", "sklearn"]:
        """The backend that fits data on ``device``: ``"auto"`` is scikit-learn on CPU only."""
        if self.backend == "auto":
            use_sklearn = device.type == "cpu" and self.algorithm == "lloyd"
            return "sklearn" if use_sklearn else "torch"
        return self.backend

    def _tol(self, x: torch.Tensor) -> float:
        return self.tol * float(x.var(0).mean()) if x.shape[0] > 1 else 0.0

    def _seed(self, x: torch.Tensor, gen: torch.Generator, size: int) -> torch.Tensor:
        """k-means++ centres ``[K, d]`` on a sample of ``size`` points (all when ``N <= size``)."""
        sample, idx = init_sample(x, max(size, self.n_clusters), gen)
        trials = self.n_local_trials
        if trials is None:
            trials = 1 if idx is None else local_trials(self.n_clusters, None)
        return kmeans_plusplus(sample, self.n_clusters, gen, trials)

    def _lloyd(self, x: torch.Tensor, centers: torch.Tensor) -> list[_Result]:
        """Lloyd iterations of ``R`` restarts at once: ``centers`` is ``[R, K, d]``.

        One pass over row chunks per iteration: scores against all running restarts' centres
        (one ``[rows, d] x [d, A K]`` matmul), argmin, and the chunk's rows added into the
        centres' sums. A restart stops when its labels no longer change or its centres move
        less than ``tol``; only the restarts still running are computed in the next iteration.
        """
        r, k, d = centers.shape
        n = x.shape[0]
        centers = centers.clone()
        n_iter = torch.zeros(r, dtype=torch.long, device=x.device)
        labels = torch.full((n, r), -1, dtype=torch.long, device=x.device)
        tol = self._tol(x)
        onehot = onehot_sums(x.device)
        running = torch.arange(r, device=x.device)
        for it in range(1, self.max_iter + 1):
            a = running.numel()
            c = centers[running]  # [A, K, d]
            flat = c.reshape(a * k, d)
            norms = (flat * flat).sum(1)[None, :]
            offsets = torch.arange(a, device=x.device)[None, :] * k
            sums = torch.zeros(a * k, d, dtype=x.dtype, device=x.device)
            counts = torch.zeros(a * k, dtype=torch.long, device=x.device)
            same = torch.ones(a, dtype=torch.bool, device=x.device)
            rows = chunk_rows(x, a * k, self.chunk_size)
            for s in range(0, n, rows):
                xb = x[s : s + rows]
                lab = torch.addmm(norms, xb, flat.T, alpha=-2.0).view(-1, a, k).argmin(2)
                if a == r:
                    same &= (lab == labels[s : s + rows]).all(0)
                    labels[s : s + rows] = lab
                else:
                    same &= (lab == labels[s : s + rows, running]).all(0)
                    labels[s : s + rows, running] = lab
                idx = lab + offsets
                accumulate(sums, xb, idx, onehot)
                counts += torch.bincount(idx.flatten(), minlength=a * k)
            cnt = counts.to(x.dtype).view(a, k)
            new = torch.where(
                (cnt == 0)[..., None], c, sums.view(a, k, d) / cnt.clamp_min(1)[..., None]
            )
            done = (((new - c) ** 2).sum((1, 2)) <= tol) | same
            centers[running] = new
            n_iter[running] = it
            running = running[~done]
            if running.numel() == 0:
                break
        final, dist = assign(x, centers, self.chunk_size)
        inertia = dist.double().sum(0)  # float64: a float32 sum over 10^6 terms loses digits
        return [(centers[i], final[:, i], float(inertia[i]), int(n_iter[i])) for i in range(r)]

    def _minibatch(self, x: torch.Tensor, centers: torch.Tensor, gen: torch.Generator) -> _Result:
        """Mini-batch k-means (Sculley, 2010, Algorithm 1) from ``centers`` ``[K, d]``.

        Sculley's per-sample step ``c <- (1 - 1/v_c) c + x / v_c`` over a batch whose labels were
        cached before the step is, in closed form, ``c <- (v_c c + sum of the batch's points in
        c) / (v_c + n_c)``: one ``index_add_`` and one ``bincount`` per step. Stops after
        ``max_iter`` steps, or once the centres' squared shift has stayed below ``tol`` (as in
        Lloyd) for ``MINIBATCH_PATIENCE`` consecutive steps: a single small step can be luck.
        """
        n, d = x.shape
        k = self.n_clusters
        centers = centers.clone()
        counts = torch.zeros(k, dtype=x.dtype, device=x.device)
        tol = self._tol(x)
        onehot = onehot_sums(x.device)
        steps = calm = 0
        while steps < self.max_iter:
            steps += 1
            idx = torch.randint(n, (min(self.batch_size, n),), generator=gen, device="cpu")
            xb = x[idx.to(x.device)]
            lab, _ = assign(xb, centers[None], self.chunk_size)
            bsum = accumulate(torch.zeros(k, d, dtype=x.dtype, device=x.device), xb, lab, onehot)
            total = counts + torch.bincount(lab[:, 0], minlength=k).to(x.dtype)
            new = torch.where(
                (total > counts)[:, None],
                (counts[:, None] * centers + bsum) / total.clamp_min(1)[:, None],
                centers,
            )
            shift = float(((new - centers) ** 2).sum())
            centers, counts = new, total
            calm = calm + 1 if shift <= tol else 0
            if calm >= MINIBATCH_PATIENCE:
                break
        labels, dist = assign(x, centers, self.chunk_size)
        return centers, labels, float(dist.double().sum()), steps

    def _lloyd_sklearn(self, x: torch.Tensor, seeds: list[torch.Tensor]) -> list[_Result]:
        """scikit-learn's Lloyd (Cython) from each of ``seeds`` ``[K, d]``, results as torch.

        ``KMeans(init=seed, n_init=1, algorithm="lloyd")`` with the same ``max_iter`` and ``tol``
        (the same stopping rule as :meth:`_lloyd`); the data go to host memory (float32 or
        float64) and the results come back on the data's device and dtype.
        """
        from sklearn.cluster import KMeans as SkKMeans

        host = x.detach().cpu()
        if host.dtype not in (torch.float32, torch.float64):
            host = host.float()
        xn = host.numpy()
        results: list[_Result] = []
        for seed in seeds:
            sk = SkKMeans(
                self.n_clusters,
                init=seed.detach().to("cpu", host.dtype).numpy(),
                n_init=1,
                max_iter=self.max_iter,
                tol=self.tol,
                algorithm="lloyd",
            ).fit(xn)
            centers = torch.from_numpy(sk.cluster_centers_).to(x.device, x.dtype)
            labels = torch.from_numpy(sk.labels_).to(x.device, torch.long)
            results.append((centers, labels, float(sk.inertia_), int(sk.n_iter_)))
        return results

    @torch.no_grad()
    def fit(self, x: torch.Tensor) -> KMeans:
        """Cluster ``x`` ``[N, d]``."""
        if not 1 <= self.n_clusters <= x.shape[0]:
            raise ValueError(f"n_clusters={self.n_clusters} must be in [1, {x.shape[0]}]")
        gen = torch.Generator().manual_seed(self.seed)
        size = self.init_size if self.init_size is not None else default_init_size(self.n_clusters)
        results: list[_Result] = []
        if self.algorithm == "minibatch":
            for _ in range(self.n_init):
                results.append(self._minibatch(x, self._seed(x, gen, size), gen))
        else:
            seeds = [self._seed(x, gen, size) for _ in range(self.n_init)]
            if self.resolved_backend(x.device) == "sklearn":
                results = self._lloyd_sklearn(x, seeds)
            else:
                results = self._lloyd(x, torch.stack(seeds))
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
        """Nearest-centre labels for new points (chunked over rows)."""
        return assign(x, self.cluster_centers_, self.chunk_size)[0]
