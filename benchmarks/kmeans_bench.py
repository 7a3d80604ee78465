"""k-means at scale: dcflow's k-means against scikit-learn's (and faiss's) on Gaussian blobs.

Usage::

    python benchmarks/kmeans_bench.py [--n 1000000] [--d 128] [--k 100] [--threads 1]
                                      [--std 2.0] [--max-iter 300] [--tol 1e-4]
                                      [--seed 0] [--seeds 1] [--rounds 1] [--batch-size 4096]
                                      [--device cpu|cuda] [--json FILE]

One process, one data set, every contender side by side: ``--n`` float32 points in ``--d``
dimensions around ``--k`` centres (``sklearn.datasets.make_blobs``, centres uniform in
``[-10, 10]^d``, ``--std`` per coordinate, data seed ``--seed``). Each contender fits it with
``n_init=1``, the same ``--max-iter`` and ``--tol``, once per seed ``--seed ...
--seed + --seeds - 1``; the timed region is the fit alone (data already on the device), best of
``--rounds`` per seed, and the table shows means over the seeds. Every contender runs on
``--threads`` threads (``torch.set_num_threads``, ``threadpoolctl`` for scikit-learn's OpenMP and
BLAS, ``faiss.omp_set_num_threads``). Rows:

- scikit-learn ``KMeans(algorithm="lloyd")``: greedy k-means++ on all points (``2 + ln K`` trials
  per step), Lloyd in Cython;
- dcflow ``KMeans`` as configured by default (``backend="torch"``): k-means++ on a sample of
  ``max(100_000, 100 K)`` points when ``n`` is larger (greedy, ``2 + ln K`` trials, there; plain
  on all points otherwise), torch Lloyd in row chunks;
- dcflow ``KMeans(backend="auto")``: the same seeds, then scikit-learn's Cython Lloyd on CPU
  tensors (torch on CUDA). Against the row above it is Lloyd engine against Lloyd engine from
  identical centres, so at equal inertia up to round-off;
- dcflow with the other seeding: plain k-means++ on the sample (``n_local_trials=1``) when ``n``
  is larger than it, greedy on all points (``n_local_trials=2 + ln K``) otherwise;
- dcflow ``KMeans(algorithm="minibatch")`` (Sculley, 2010): at most ``--max-iter`` steps of
  ``--batch-size`` points;
- faiss ``Kmeans`` where ``import faiss`` works: random init, all points
  (``max_points_per_centroid=n``), as many iterations as scikit-learn ran for that seed (faiss has
  no ``tol``).

Prints a markdown table: wall seconds, iterations, inertia, the speed ratio (scikit-learn s /
row s: above 1 is faster than scikit-learn) and the relative inertia difference
(row / scikit-learn - 1: below 0 is a lower, better optimum).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch


def blobs(n: int, d: int, k: int, std: float, seed: int) -> np.ndarray:
    """``[n, d]`` float32 Gaussian blobs around ``k`` centres (``make_blobs``)."""
    from sklearn.datasets import make_blobs

    x, _ = make_blobs(
        n, n_features=d, centers=k, cluster_std=std, center_box=(-10.0, 10.0), random_state=seed
    )
    return np.ascontiguousarray(x, dtype=np.float32)


CPU = torch.device("cpu")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


Fit = Callable[[int], dict[str, float]]  # fit(seed) -> {"inertia", "n_iter"}


def measure(fit: Fit, seeds: list[int], rounds: int, device: torch.device) -> dict[str, Any]:
    """Mean over ``seeds`` of the best wall time of ``rounds`` fits, inertia and iterations."""
    per_seed: list[dict[str, float]] = []
    for seed in seeds:
        best = float("inf")
        out: dict[str, float] = {}
        for _ in range(rounds):
            _sync(device)
            started = time.perf_counter()
            out = fit(seed)
            _sync(device)
            best = min(best, time.perf_counter() - started)
        per_seed.append({"seconds": best, **out})
    mean = {key: float(np.mean([r[key] for r in per_seed])) for key in per_seed[0]}
    return {**mean, "per_seed": per_seed}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Fit every contender on one data set; the raw figures, keyed by row title."""
    from sklearn.cluster import KMeans as SkKMeans
    from threadpoolctl import threadpool_limits

    from dcflow.clustering.kmeans import KMeans
    from dcflow.clustering.seeding import default_init_size, local_trials

    device = torch.device(args.device)
    started = time.perf_counter()
    x = blobs(args.n, args.d, args.k, args.std, args.seed)
    xt = torch.from_numpy(x).to(device)
    print(f"data {x.shape} in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    seeds = list(range(args.seed, args.seed + args.seeds))
    rows: dict[str, Any] = {}
    sk_iters: dict[int, int] = {}

    def sklearn_fit(seed: int) -> dict[str, float]:
        with threadpool_limits(args.threads):
            sk = SkKMeans(
                args.k,
                n_init=1,
                max_iter=args.max_iter,
                tol=args.tol,
                random_state=seed,
                algorithm="lloyd",
            ).fit(x)
        sk_iters[seed] = int(sk.n_iter_)
        return {"inertia": float(sk.inertia_), "n_iter": int(sk.n_iter_)}

    def dcflow_fit(**kw: Any) -> Fit:
        def fit(seed: int) -> dict[str, float]:
            with threadpool_limits(args.threads):  # backend="auto" on CPU runs scikit-learn
                km = KMeans(args.k, 1, args.max_iter, args.tol, seed, **kw).fit(xt)
            return {"inertia": float(km.inertia_), "n_iter": int(km.n_iter_)}

        return fit

    size = default_init_size(args.k)
    sample = f"a {size} sample" if args.n > size else f"all {args.n}"
    greedy = f"greedy k-means++ ({local_trials(args.k, None)} trials)"
    default_init = f"{greedy if args.n > size else 'k-means++'} on {sample}"
    other = 1 if args.n > size else local_trials(args.k, None)
    engine = "scikit-learn's Lloyd" if device.type == "cpu" else "torch"
    contenders: list[tuple[str, str, Fit]] = [
        ("scikit-learn KMeans (lloyd)", f"{greedy} on all {args.n}", sklearn_fit),
        ("dcflow KMeans (torch)", default_init, dcflow_fit()),
        (f'dcflow KMeans backend="auto" ({engine})', default_init, dcflow_fit(backend="auto")),
        (  # the other seeding: plain k-means++ on the sample, or greedy on all points
            f"dcflow KMeans (torch), n_local_trials={other}",
            f"{greedy if other > 1 else 'k-means++'} on {sample}",
            dcflow_fit(n_local_trials=other),
        ),
        (
            f"dcflow KMeans minibatch, batch {args.batch_size}",
            default_init,
            dcflow_fit(algorithm="minibatch", batch_size=args.batch_size),
        ),
    ]
    for title, init, fit in contenders:
        rows[title] = {"init": init, **measure(fit, seeds, args.rounds, device)}
        print(f"{title}: {rows[title]}", file=sys.stderr, flush=True)
    try:
        import faiss  # type: ignore[import-not-found]
    except ImportError:
        print("faiss: not importable, row skipped", file=sys.stderr)
    else:
        faiss.omp_set_num_threads(args.threads)

        def faiss_fit(seed: int) -> dict[str, float]:
            km = faiss.Kmeans(
                args.d,
                args.k,
                niter=sk_iters[seed],
                nredo=1,
                seed=seed,
                max_points_per_centroid=args.n,
            )
            km.train(x)
            dist, _ = km.index.search(x, 1)
            return {"inertia": float(dist.astype(np.float64).sum()), "n_iter": sk_iters[seed]}

        title = f"faiss Kmeans {faiss.__version__}, cpu, iterations as scikit-learn's"
        rows[title] = {"init": "random", **measure(faiss_fit, seeds, args.rounds, CPU)}
        print(f"{title}: {rows[title]}", file=sys.stderr, flush=True)
    return rows


def table(rows: dict[str, Any], args: argparse.Namespace, threads: int) -> list[str]:
    """The markdown table of ``rows`` against the scikit-learn row."""
    ref = rows["scikit-learn KMeans (lloyd)"]
    seeds = (
        f"seed {args.seed}"
        if args.seeds == 1
        else f"mean of seeds {args.seed}-{args.seed + args.seeds - 1}"
    )
    out = [
        f"{args.n} x {args.d} float32 blobs, K={args.k}, std {args.std}, n_init 1, max_iter "
        f"{args.max_iter}, tol {args.tol}, {args.device}, {threads} thread(s), {seeds}",
        "",
        "| implementation | init | wall (s) | iterations | inertia | speed ratio "
        "(scikit-learn s / s) | inertia vs scikit-learn |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for title, r in rows.items():
        out.append(
            f"| {title} | {r['init']} | {r['seconds']:.2f} | {r['n_iter']:.3g} | "
            f"{r['inertia']:.6g} | {ref['seconds'] / r['seconds']:.2f} | "
            f"{r['inertia'] / ref['inertia'] - 1:+.2%} |"
        )
    return out


def main() -> int:
    """Run the comparison and print the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--d", type=int, default=128)
    p.add_argument("--k", type=int, default=100)
    p.add_argument("--std", type=float, default=2.0, help="blob standard deviation")
    p.add_argument("--max-iter", type=int, default=300)
    p.add_argument("--tol", type=float, default=1e-4)
    p.add_argument("--batch-size", type=int, default=4096, help="mini-batch row's batch")
    p.add_argument("--seed", type=int, default=0, help="seed of the data and of the first fit")
    p.add_argument("--seeds", type=int, default=1, help="fits per row, seeds --seed, --seed+1, ...")
    p.add_argument("--rounds", type=int, default=1, help="timed fits per seed (best kept)")
    p.add_argument("--threads", type=int, default=1, help="threads of every contender")
    p.add_argument("--device", default="cpu", help="device of the torch rows")
    p.add_argument("--skip-auto", action="store_true", help='skip the backend="auto" row')
    p.add_argument("--json", help="write the raw figures here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = run(args)
    print("\n".join(table(rows, args, torch.get_num_threads())))
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
