"""Stream a synthetic pool of N images through one epoch of the SimCLR pretrain stage; peak memory.

Usage::

    python benchmarks/stream_bench.py [--sizes 100000,1000000] [--image 32x32x3]
                                      [--batch 512] [--threads 2] [--dir DIR] [--json FILE]

For each N the script writes an uncompressed npz of N random uint8 images (channels last, as a user
would save them with ``np.savez``), then runs ``scan``'s pretrain stage on it in a fresh process:
``dcflow.stages.pretrain`` with ``simclr.epochs=1``, ``model.backbone=small_cnn`` and
``model.widths=[16,32]`` (a CPU-sized network: the figure is about memory, not about SimCLR).
The child process reports:

- ``peak RSS``: the kernel's high-water mark of resident memory (``VmHWM``), which counts the pages
  of the memory-mapped pool that the epoch touched (file pages, reclaimable);
- ``peak anon``: the highest anonymous resident memory (``RssAnon``, sampled every 50 ms): the
  heap, the model, the batches; what must not grow with N;
- the bytes of the pool, the epoch's throughput and the stage's wall time.

``--float-at N`` runs one more N from the same pixels stored as float32 (the former loader's pool,
4x the bytes), so the per-batch uint8 conversion's cost is a ratio from the same run.

The acceptance line of issue 22: peak RSS below 2 GiB plus the uint8 pool.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

GIB = float(1 << 30)
CHUNK = 20000


def write_pool(
    path: Path, n: int, shape: tuple[int, int, int], as_float: bool = False, seed: int = 0
) -> None:
    """An uncompressed npz with ``x`` uint8 ``[n, H, W, C]``, written in chunks (never whole).

    ``as_float`` writes the same pixels as float32 ``/255``: the pool the former loader held.
    """
    rng = np.random.default_rng(seed)
    descr = "<f4" if as_float else "|u1"
    header = {"descr": descr, "fortran_order": False, "shape": (n, *shape)}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        with zf.open("x.npy", "w", force_zip64=True) as fh:
            np.lib.format.write_array_header_2_0(fh, header)  # type: ignore[arg-type]
            for start in range(0, n, CHUNK):
                rows = min(CHUNK, n - start)
                block = rng.integers(0, 256, (rows, *shape), dtype=np.uint8)
                out = block.astype(np.float32) / np.float32(255.0) if as_float else block
                fh.write(out.tobytes())
        with zf.open("y.npy", "w") as fh:
            np.lib.format.write_array(fh, (np.arange(n) % 10).astype(np.int64))


CHILD = r"""
import json, re, sys, tempfile, threading, time
from pathlib import Path

peak = {"anon": 0}
def _sample():
    while True:
        text = Path("/proc/self/status").read_text()
        peak["anon"] = max(peak["anon"], int(re.search(r"RssAnon:\s+(\d+)", text).group(1)))
        time.sleep(0.05)
threading.Thread(target=_sample, daemon=True).start()

from dcflow.config import build_run_config
from dcflow.methods.registry import get_method
from dcflow.stages.pretrain import pretrain

path, batch, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sets = ["simclr.epochs=1", f"simclr.batch_size={batch}", "model.backbone=small_cnn",
        "model.widths=[16,32]", "model.proj_dim=64", f"threads={threads}"]
cfg = build_run_config("scan", get_method("scan").Config, {"name": f"npz:{path}",
                       "n_clusters": 10}, overrides=sets, seed=0)
with tempfile.TemporaryDirectory() as tmp:
    t0 = time.perf_counter()
    out = pretrain(cfg.model_dump_json(), f"file://{tmp}/store", f"{tmp}/out")
    wall = time.perf_counter() - t0
status = Path("/proc/self/status").read_text()
hwm = int(re.search(r"VmHWM:\s+(\d+)", status).group(1))
metrics = out["report"]["metrics"]
print(json.dumps({"peak_rss_kib": hwm, "peak_anon_kib": peak["anon"], "wall_s": wall,
                  "samples_per_second": metrics["samples_per_second"]}))
"""


def run_child(path: Path, batch: int, threads: int) -> dict[str, Any]:
    """The pretrain stage in a fresh process; its JSON line."""
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), str(batch), str(threads)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"pretrain failed: {proc.stderr.strip().splitlines()[-1]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    """Parse the arguments, run every size, print the table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--image", default="32x32x3", help="HxWxC")
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--float-at",
        type=int,
        default=100000,
        help="also run this N from a float32 pool (the former layout) for the speed ratio; 0: no",
    )
    ap.add_argument("--dir", default=None, help="where the npz files go (default: a temp dir)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    h, w, c = (int(v) for v in args.image.split("x"))
    rows = []
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="dcflow-stream-") as tmp:
        cells = [(int(v), False) for v in args.sizes.split(",")]
        cells += [(args.float_at, True)] if args.float_at else []
        for n, as_float in cells:
            path = Path(tmp) / f"pool{n}.npz"
            write_pool(path, n, (h, w, c), as_float)
            res = run_child(path, args.batch, args.threads)
            path.unlink()
            pool = n * h * w * c
            kind = "float32" if as_float else "uint8"
            rows.append({"n": n, "pool": kind, "pool_gib": pool * (4 if as_float else 1) / GIB})
            rows[-1].update(res)
            print(f"N={n}: {json.dumps(rows[-1])}", file=sys.stderr)
    print(
        "| N | pool | pool GiB | peak RSS GiB | peak anon GiB | peak RSS - pool GiB "
        "| samples/s | stage wall s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        rss, anon = r["peak_rss_kib"] / (1 << 20), r["peak_anon_kib"] / (1 << 20)
        print(
            f"| {r['n']} | {r['pool']} | {r['pool_gib']:.2f} | {rss:.2f} | {anon:.2f} | "
            f"{rss - r['pool_gib']:.2f} | {r['samples_per_second']:.0f} | {r['wall_s']:.0f} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
