"""dcflow benchmark: training-loop throughput vs a bare PyTorch loop, k-means vs scikit-learn,
pipeline overhead per stage, and peak memory on MNIST. Ratios are measured side by side in one run.

Usage::

    python benchmarks/bench.py [--data-dir ../shared/data] [--dataset usps] [--threads 1]
                               [--methods aspc-da self-cc scan cc propos hadis] [--epochs N]
                               [--rounds 2]
                               [--device cpu|cuda] [--skip-pipeline] [--skip-memory] [--json FILE]

Training loops: each method family's main loop (its ``pretrain`` hook, run in this process on a
fresh stage context) against a bare PyTorch loop doing the same work (``benchmarks/loops.py``),
alternating hook and bare loop ``--rounds`` times (2) and keeping the best of each; the ratio is
hook / bare samples per second. RUC pretrains with SCAN's SimCLR loop and ULDC with CC's (their
``weights_owner``), so those rows stand for them; HaDis's warm-up is ProPos's plus the HSD term.
Prints a markdown table (the README's) and, with ``--json``, writes the raw figures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make ``benchmarks.loops`` importable
    sys.path.insert(0, str(ROOT))

from benchmarks import loops  # noqa: E402
from benchmarks.loops import BareLoop  # noqa: E402


def _ctx(data: Any, device: torch.device) -> Any:
    from dcflow.methods.base import StageContext
    from dcflow.stages.common import without_labels

    return StageContext(data=without_labels(data), device=device, seed=0)


def _method(method_name: str, dataset: str, data_dir: str, overrides: list[str]) -> tuple[Any, Any]:
    """The registered method built from its preset plus ``--set``-style ``overrides``, and data."""
    from dcflow.config import build_run_config
    from dcflow.data import load_dataset
    from dcflow.methods.registry import get_method

    cls = get_method(method_name)
    ds = {"name": dataset, **({"data_dir": str(Path(data_dir).resolve())} if data_dir else {})}
    cfg = build_run_config(method_name, cls.Config, ds, None, overrides)
    return cls(cfg), load_dataset(cfg.dataset)


@dataclass(frozen=True)
class Loop:
    """One method's main training loop: the hook is ``pretrain``; ``sets(epochs)`` sizes it.

    On digits an epoch takes 0.1-0.2 s on one thread, so the default epochs make each timed run
    last 1-2 s: with 1-2 epochs, timer noise and the stage's fixed costs would decide the ratio.
    """

    method: str
    title: str
    sets: Callable[[int], list[str]]
    bare: BareLoop
    epochs: int  # default on digits: about 1-2 s per run on 1 CPU thread (2 on larger sets)


LOOPS: dict[str, Loop] = {
    "aspc-da": Loop(
        "aspc-da",
        "ASPC-DA pretrain (augmented AE, SGD)",
        lambda e: [f"pretrain.epochs={e}", "pretrain.optimizer=sgd"],
        loops.bare_aspc_pretrain,
        20,
    ),
    "self-cc": Loop(
        "self-cc",
        "Self-CC pretrain (clean AE, Adam)",
        lambda e: [f"pretrain.epochs={e}"],
        loops.bare_self_cc_pretrain,
        20,
    ),
    "scan": Loop(
        "scan",
        "SCAN SimCLR pretrain (RUC shares it: weights_owner scan)",
        lambda e: [f"simclr.epochs={e}"],
        loops.bare_simclr_pretrain,
        10,
    ),
    "cc": Loop(
        "cc",
        "CC pretrain (ULDC shares it: weights_owner cc)",
        lambda e: [f"pretrain.epochs={e}"],
        loops.bare_cc_pretrain,
        20,
    ),
    "propos": Loop(
        "propos",
        "ProPos warm-up (BYOL alignment + EMA)",
        lambda e: [f"train.warmup_epochs={e}", f"train.epochs={e + 1}"],
        loops.bare_propos_pretrain,
        20,
    ),
    "hadis": Loop(
        "hadis",
        "HaDis warm-up (ProPos's + HSD term)",
        lambda e: [f"train.warmup_epochs={e}", f"train.epochs={e + 1}"],
        loops.bare_propos_pretrain,
        15,
    ),
}


def training_loop(loop: Loop, args: argparse.Namespace, device: torch.device) -> dict[str, float]:
    """A method's pretrain hook against its bare loop, same model and data, alternating.

    One untimed 1-epoch bare run first warms the kernels and the allocator for both; then
    ``args.rounds`` rounds of (hook, bare), keeping the best of each, so that drift on a shared
    machine hits both.
    """
    epochs = args.epochs or (loop.epochs if args.dataset == "digits" else 2)
    method, data = _method(loop.method, args.dataset, args.data_dir, loop.sets(epochs))
    loop.bare(method, data, device, 1)
    hook, bare = [], []
    for _ in range(args.rounds):
        started = time.perf_counter()
        method.pretrain(_ctx(data, device))
        if device.type == "cuda":
            torch.cuda.synchronize()
        hook.append(epochs * data.n / (time.perf_counter() - started))
        bare.append(loop.bare(method, data, device, epochs))
    h, b = max(hook), max(bare)
    return {"n": data.n, "epochs": epochs, "hook_samples_s": h, "bare_samples_s": b, "ratio": h / b}


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


def pipeline_overhead(threads: int = 0) -> dict[str, float]:
    """(wall - sum of stage seconds) / stages of ``dcflow run aspc-da --dataset digits``."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "dcflow.cli", "run", "aspc-da", "--json", "s.json", "--quiet"]
        cmd += ["--set", f"threads={threads}"] if threads else []
        subprocess.run(cmd, cwd=tmp, check=True, capture_output=True)
        s = json.loads((Path(tmp) / "s.json").read_text())
    stage_sum = sum(r["seconds"] for r in s["stages"].values())
    n = len(s["stages"])
    return {
        "wall_s": s["wall_seconds"],
        "stages": n,
        "per_stage_s": (s["wall_seconds"] - stage_sum) / n,
    }


def peak_memory(data_dir: str, device: str, threads: int = 0) -> dict[str, float]:
    """Peak RSS of one process that loads MNIST (70k) and runs one ASPC-DA pretrain epoch."""
    code = (
        "import sys; sys.argv=['x']; import benchmarks.bench as b, torch;"
        f"torch.set_num_threads({threads}) if {threads} else None;"
        f"m, d = b._method('aspc-da', 'mnist', {data_dir!r}, ['pretrain.epochs=1']);"
        f"dev=torch.device({device!r});"
        "m.pretrain(b._ctx(d, dev));"
        "import resource; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True)
    rss_kb = int(out.stdout.decode().strip().splitlines()[-1])
    return {"peak_rss_mib": rss_kb / 1024, "seconds": time.perf_counter() - started}


def table(res: dict[str, Any], dataset: str) -> list[str]:
    """The markdown table of ``res`` (one row per training loop, then k-means, overhead, memory)."""
    rows = [
        f"| benchmark ({res['device']}, {res['threads']} threads) | dcflow | reference | ratio |",
        "| --- | --- | --- | --- |",
    ]
    for name, t in res["train"].items():
        rows.append(
            f"| {LOOPS[name].title}, {dataset} n={t['n']}, {t['epochs']} ep (samples/s) | "
            f"{t['hook_samples_s']:.0f} | bare PyTorch loop {t['bare_samples_s']:.0f} | "
            f"{t['ratio']:.2f} |"
        )
    k = res["kmeans"]
    rows.append(
        f"| k-means 20k x 10, K=10, n_init 10 (s) | {k['dcflow_s']:.2f} | scikit-learn "
        f"{k['sklearn_s']:.2f} | {k['speed_ratio']:.2f} (scikit-learn s / dcflow s), inertia ratio "
        f"{k['inertia_ratio']:.3f} |"
    )
    if "pipeline" in res:
        q = res["pipeline"]
        rows.append(
            f"| pipeline overhead, aspc-da digits (s per stage) | {q['per_stage_s']:.2f} | "
            f"goal 3.0 | {q['stages']} stages, wall {q['wall_s']:.1f} s |"
        )
    if "memory" in res:
        m = res["memory"]
        rows.append(
            f"| peak RSS, MNIST 70k load + 1 pretrain epoch (MiB) | {m['peak_rss_mib']:.0f} | – "
            f"| {m['seconds']:.0f} s |"
        )
    return rows


def main() -> int:
    """Run the benchmarks and print the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="usps")
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--methods", nargs="+", choices=list(LOOPS), default=list(LOOPS))
    p.add_argument("--epochs", type=int, help="epochs of every loop (default: each loop's own)")
    p.add_argument("--rounds", type=int, default=2, help="alternating (hook, bare) rounds")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--skip-pipeline", action="store_true")
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--json", help="write the raw figures here")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    res: dict[str, Any] = {"device": args.device, "threads": torch.get_num_threads(), "train": {}}
    for name in args.methods:
        res["train"][name] = training_loop(LOOPS[name], args, device)
        print(f"{name}: {res['train'][name]}", file=sys.stderr, flush=True)
    res["kmeans"] = kmeans(device)
    if not args.skip_pipeline:
        res["pipeline"] = pipeline_overhead(args.threads)
    if not args.skip_memory:
        res["memory"] = peak_memory(args.data_dir, args.device, args.threads)
    print("\n".join(table(res, args.dataset)))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
