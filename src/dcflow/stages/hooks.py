"""Runner of the method hooks (pretrain, cluster-init, confident-sample-selection, refine)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from dcflow.errors import ConfigError
from dcflow.progress import emit
from dcflow.registry import get_method
from dcflow.stages import resume
from dcflow.stages.common import (
    finish,
    guard,
    load_run,
    seed_everything,
    select_device,
    weights_key,
    without_labels,
)
from dcflow.storage import fetch_weights


@guard
def run_hook(
    stage: str,
    config_json: str,
    inputs: dict[str, str],
    out_dir: str,
    weights_uri: str = "",
    weights_sha256: str = "",
    started: float | None = None,
    finish_report: bool = True,
) -> dict[str, Any]:
    """Run one method hook in this process and return its stage report.

    Args:
        stage: ``pretrain``, ``cluster-init``, ``confident-sample-selection`` or ``refine``.
        config_json: the validated run config as JSON.
        inputs: upstream artifact directories keyed by stage name.
        out_dir: this stage's artifact directory.
        weights_uri: pretrained weights to load (verified against ``weights_sha256`` first).
        weights_sha256: expected sha256 of the weights.
        started: wall-clock start of the stage (seconds since the epoch).
        finish_report: write the report and announce the end (pretrain defers it).
    """
    from dcflow.methods.base import HOOKS, StageContext

    started = started or time.time()
    emit(f"start {stage}")
    cfg, data = load_run(config_json)
    method = get_method(cfg.method)(cfg)
    if stage not in method.stages or stage not in HOOKS:
        raise ConfigError(f"method {cfg.method} has no stage {stage!r}")
    seed_everything(cfg.seed, cfg.threads)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    key = resume.stage_key(stage, config_json, inputs, weights_sha256) if finish_report else ""
    cached = resume.lookup(key) if key else None
    if cached is not None:
        old = resume.restore(cached, out)
        emit(f"  resumed: reusing the finished {stage} output ({cached.name})")
        return finish(stage, started, out, old["metrics"], old["curves"], skipped=True)
    with tempfile.TemporaryDirectory(prefix="dcflow-weights-") as tmp:
        local = (
            fetch_weights(weights_uri, weights_sha256, Path(tmp) / "weights.pt")
            if weights_uri
            else None
        )
        ctx = StageContext(
            data=without_labels(data),
            inputs={k: Path(v) for k, v in inputs.items()},
            out=out,
            device=select_device(cfg.device),
            seed=cfg.seed,
            weights=local,
        )
        metrics = getattr(method, HOOKS[stage])(ctx)
    curves = ctx.curves.to_dict()
    if not finish_report:  # pretrain publishes its weights under the cache key before finishing
        owner = method.weights_name()
        key = weights_key(owner, data, method.pretrain_config(), cfg.seed)
        return {"metrics": metrics, "curves": curves, "weights_key": key, "weights_owner": owner}
    report = finish(stage, started, out, metrics, curves)
    resume.store(key, out)
    return report
