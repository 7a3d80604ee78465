"""One process of a data-parallel training stage: ``python -m dcflow.stages.train_worker``.

Started by torchrun (``--nproc`` on one machine, :mod:`dcflow.stages.launch`) or as the command of
a Kubeflow Trainer job's workers (``compile.py --workers``). Arguments: the stage (``pretrain``,
``cluster-init`` or ``refine``), the run config JSON file and the output directory; cluster-init
adds the verified weights, refine the cluster-init and selection artifact directories and the
verified weights. Every process builds the same stage
context, joins the process group torchrun describes (gloo on CPU; nccl on CUDA with
``LOCAL_RANK``'s device), runs the same hook; only rank 0 writes the output. Progress lines come
from rank 0 only.

Exit codes: 0 on success, 2 on a user or stage error (one ``dcflow: error:`` line on stderr).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from pathlib import Path
from typing import Any

from dcflow.errors import DcflowError

WORKER_STAGES = ("pretrain", "cluster-init", "refine")


def main(argv: list[str]) -> int:
    """Run ``argv = [stage, config.json, out_dir]`` in this process; return the exit code."""
    import torch
    import torch.distributed as dist

    from dcflow.methods.base import StageContext
    from dcflow.methods.registry import get_method
    from dcflow.stages.common import load_run, seed_everything, select_device, without_labels
    from dcflow.stages.launch import save_output
    from dcflow.train.distributed import init_from_env

    stage, config_path, out, *extra = argv
    if stage not in WORKER_STAGES:
        print(f"dcflow: error: no data-parallel worker for stage {stage!r}", file=sys.stderr)
        return 2
    try:
        cfg, data = load_run(Path(config_path).read_text())
        method = get_method(cfg.method)(cfg)
        seed_everything(cfg.seed, cfg.threads)
        device = select_device(cfg.device)
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
        world = init_from_env(device)
        ctx = StageContext(data=without_labels(data), device=device, seed=cfg.seed)
        quiet = contextlib.redirect_stderr(io.StringIO()) if not world.main else None
        with quiet or contextlib.nullcontext():
            result = _hook(method, stage, ctx, extra)
        if world.main:
            save_output(result, ctx.curves.to_dict(), Path(out))
        if dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()
    except DcflowError as exc:
        print(f"dcflow: error: {exc}", file=sys.stderr)
        return 2
    return 0


def _hook(method: Any, stage: str, ctx: Any, extra: list[str]) -> Any:
    """Call ``stage``'s hook.

    cluster-init reads ``extra = [weights]``, refine ``extra = [init_dir, selection_dir,
    weights]``.
    """
    if stage == "pretrain":
        return method.pretrain(ctx)
    from dcflow.handoff import ClusterInitOut, SelectionOut

    if stage == "cluster-init":
        ctx.weights = Path(extra[0]) if extra[0] else None
        return method.cluster_init(ctx)

    init_dir, selection_dir, weights = extra
    ctx.weights = Path(weights) if weights else None
    selection = SelectionOut.load(selection_dir) if selection_dir else None
    return method.refine(ctx, ClusterInitOut.load(init_dir), selection)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
