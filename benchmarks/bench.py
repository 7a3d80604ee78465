"""dcflow benchmark: training-loop throughput vs a bare PyTorch loop, k-means vs scikit-learn,
pipeline overhead per stage, and peak memory on MNIST. Ratios are measured side by side in one run.

Usage::

    python benchmarks/bench.py [--data-dir ../shared/data] [--dataset usps] [--epochs 3]
                               [--device cpu|cuda] [--skip-pipeline] [--skip-memory] [--json FILE]

Prints a markdown table (the README's) and, with ``--json``, writes the raw figures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def _ctx(data: Any, out: Path, device: torch.device) -> Any:
    from dcflow.methods.base import StageContext
    from dcflow.stages.common import without_labels

    return StageContext(data=without_labels(data), inputs={}, out=out, device=device, seed=0)


def _method(dataset: str, data_dir: str, overrides: list[str]) -> tuple[Any, Any]:
    from dcflow.config import build_run_config
    from dcflow.data import load_dataset
    from dcflow.registry import get_method

    ds = {"name": dataset, **({"data_dir": str(Path(data_dir).resolve())} if data_dir else {})}
    cfg = build_run_config("aspc-da", get_method("aspc-da").Config, ds, None, overrides)
    return get_method("aspc-da")(cfg), load_dataset(cfg.dataset)


def bare_aspc_pretrain(method: Any, data: Any, device: torch.device, epochs: int) -> float:
    """The same autoencoder, optimiser, batches and augmentation in a plain loop; samples/s."""
    from dcflow.models.autoencoder import AutoEncoder
    from dcflow.transforms.affine import RandomAffine

    c, a = method.cfg.pretrain, method.cfg.augment
    x = torch.from_numpy(data.x.reshape(data.n, -1)).to(device)
    model = AutoEncoder([x.shape[1], *c.hidden_dims, c.embedding_dim]).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=c.lr, momentum=c.momentum)
    aug, gen = RandomAffine(a.rotation, a.shift, a.interpolation), torch.Generator().manual_seed(0)
    started = time.perf_counter()
    for _ in range(epochs):
        for idx in torch.randperm(data.n, generator=gen).to(device).split(c.batch_size):
            xb = aug(x[idx].view(idx.numel(), *data.image_shape), gen).flatten(1)
            loss = torch.nn.functional.mse_loss(model(xb), xb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return epochs * data.n / (time.perf_counter() - started)


def training_loop(args: argparse.Namespace, device: torch.device) -> dict[str, float]:
    """ASPC-DA's pretrain hook against the bare loop, same model and data, alternating twice."""
    sets = [f"pretrain.epochs={args.epochs}", "pretrain.optimizer=sgd"]
    method, data = _method(args.dataset, args.data_dir, sets)
    hook, bare = [], []
    for _ in range(2):  # alternate so that drift on a shared machine hits both
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            method.pretrain(_ctx(data, Path(tmp), device))
            hook.append(args.epochs * data.n / (time.perf_counter() - started))
        bare.append(bare_aspc_pretrain(method, data, device, args.epochs))
    h, b = max(hook), max(bare)
    return {"n": data.n, "hook_samples_s": h, "bare_samples_s": b, "ratio": h / b}


def kmeans(device: torch.device, n: int = 20000, d: int = 10, k: int = 10) -> dict[str, float]:
    """dcflow's torch k-means against scikit-learn's on the same blobs (n_init 10)."""
    from sklearn.cluster import KMeans as SkKMeans
    from sklearn.datasets import make_blobs

    from dcflow.clustering.kmeans import KMeans

    x, _ = make_blobs(n, n_features=d, centers=k, cluster_std=2.0, random_state=0)
    x = x.astype(np.float32)
    started = time.perf_counter()
    ours = KMeans(k, n_init=10, seed=0)
    ours.fit_predict(torch.from_numpy(x).to(device))
    t_ours = time.perf_counter() - started
    started = time.perf_counter()
    sk = SkKMeans(k, n_init=10, random_state=0).fit(x)
    t_sk = time.perf_counter() - started
    return {
        "dcflow_s": t_ours,
        "sklearn_s": t_sk,
        "speed_ratio": t_sk / t_ours,
        "inertia_ratio": float(ours.inertia_) / float(sk.inertia_),
    }


def pipeline_overhead() -> dict[str, float]:
    """(wall - sum of stage seconds) / stages of ``dcflow run aspc-da --dataset digits``."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "dcflow.cli", "run", "aspc-da", "--json", "s.json", "--quiet"]
        subprocess.run(cmd, cwd=tmp, check=True, capture_output=True)
        s = json.loads((Path(tmp) / "s.json").read_text())
    stage_sum = sum(r["seconds"] for r in s["stages"].values())
    n = len(s["stages"])
    return {
        "wall_s": s["wall_seconds"],
        "stages": n,
        "per_stage_s": (s["wall_seconds"] - stage_sum) / n,
    }


def peak_memory(data_dir: str, device: str) -> dict[str, float]:
    """Peak RSS of one process that loads MNIST (70k) and runs one ASPC-DA pretrain epoch."""
    code = (
        "import sys; sys.argv=['x']; import benchmarks.bench as b, torch, tempfile, pathlib;"
        f"m, d = b._method('mnist', {data_dir!r}, ['pretrain.epochs=1']);"
        f"dev=torch.device({device!r});"
        "t=tempfile.mkdtemp(); m.pretrain(b._ctx(d, pathlib.Path(t), dev));"
        "import resource; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True)
    rss_kb = int(out.stdout.decode().strip().splitlines()[-1])
    return {"peak_rss_mib": rss_kb / 1024, "seconds": time.perf_counter() - started}


def main() -> int:
    """Run the benchmarks and print the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="usps")
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--skip-pipeline", action="store_true")
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--json", help="write the raw figures here")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    res: dict[str, Any] = {"device": args.device, "threads": torch.get_num_threads()}
    res["train"] = training_loop(args, device)
    res["kmeans"] = kmeans(device)
    if not args.skip_pipeline:
        res["pipeline"] = pipeline_overhead()
    if not args.skip_memory:
        res["memory"] = peak_memory(args.data_dir, args.device)
    t, k = res["train"], res["kmeans"]
    print(f"| benchmark ({args.device}, {res['threads']} threads) | dcflow | reference | ratio |")
    print("| --- | --- | --- | --- |")
    print(
        f"| ASPC-DA pretrain loop, {args.dataset} n={t['n']} (samples/s) | "
        f"{t['hook_samples_s']:.0f} | bare PyTorch loop {t['bare_samples_s']:.0f} | "
        f"{t['ratio']:.2f} |"
    )
    print(
        f"| k-means 20k x 10, K=10, n_init 10 (s) | {k['dcflow_s']:.2f} | scikit-learn "
        f"{k['sklearn_s']:.2f} | {k['speed_ratio']:.2f}x faster, inertia ratio "
        f"{k['inertia_ratio']:.3f} |"
    )
    if "pipeline" in res:
        q = res["pipeline"]
        print(
            f"| pipeline overhead, aspc-da digits (s per stage) | {q['per_stage_s']:.2f} | "
            f"goal 3.0 | {q['stages']} stages, wall {q['wall_s']:.1f} s |"
        )
    if "memory" in res:
        m = res["memory"]
        print(
            f"| peak RSS, MNIST 70k load + 1 pretrain epoch (MiB) | {m['peak_rss_mib']:.0f} | – "
            f"| {m['seconds']:.0f} s |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
