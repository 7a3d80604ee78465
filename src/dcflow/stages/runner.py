"""Opening a stage: config, data, method, seed, device, verified weights and the resume cache.

Every stage file reads top to bottom as: open the stage, return the reused report when ``--resume``
finds this exact execution in the stage cache, else load the typed inputs, call the method's hook
and :meth:`OpenStage.close` with what it returned (saved into the artifact, report written,
stage cached).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dcflow.config import RunConfig
from dcflow.data import Dataset
from dcflow.errors import ConfigError
from dcflow.handoff import ClusterInitOut, RefineOut, SelectionOut
from dcflow.methods.base import Method, StageContext
from dcflow.methods.registry import get_method
from dcflow.progress import emit
from dcflow.stages import resume
from dcflow.stages.common import finish, load_run, seed_everything, select_device, without_labels
from dcflow.storage import fetch_weights


@dataclass
class OpenStage:
    """A stage in progress.

    Attributes:
        name: the stage (``cluster-init``, ...).
        cfg: the run config.
        data: the dataset with labels (only for keys and fingerprints; hooks see ``ctx.data``).
        method: the method instance.
        ctx: what the hook may use (data without labels, device, seed, weights, curves).
        out: this stage's artifact directory.
        started: wall-clock start.
        key: the stage-cache key ("" when the stage is not cached).
        reused: the report of a reused (``--resume``) execution, else ``None``.
    """

    name: str
    cfg: RunConfig
    data: Dataset
    method: Method
    ctx: StageContext
    out: Path
    started: float
    key: str = ""
    reused: dict[str, Any] | None = None

    def close(self, result: ClusterInitOut | SelectionOut | RefineOut) -> dict[str, Any]:
        """Save the hook's output, write the report, cache the stage; return the report."""
        result.save(self.out)
        report = finish(
            self.name, self.started, self.out, result.metrics, self.ctx.curves.to_dict()
        )
        if self.key:
            resume.store(self.key, self.out)
        return report


@contextmanager
def open_stage(
    name: str,
    config_json: str,
    out_dir: str,
    inputs: dict[str, str] | None = None,
    weights_uri: str = "",
    weights_sha256: str = "",
    started: float | None = None,
    cached: bool = True,
    declared: bool = True,
) -> Iterator[OpenStage]:
    """Open stage ``name`` of the run described by ``config_json``.

    Args:
        name: the stage.
        config_json: the validated run config.
        out_dir: this stage's artifact directory (created).
        inputs: upstream artifact directories by stage name (they key the stage cache).
        weights_uri: pretrained weights, fetched and checked against ``weights_sha256``.
        weights_sha256: their expected checksum.
        started: wall-clock start of the stage (default: now).
        cached: whether the stage takes part in the ``--resume`` stage cache.
        declared: whether the method must declare ``name`` in its stages (``predict`` is not a
            pipeline stage of the fit).

    Raises:
        ConfigError: the method has no such stage.
        WeightsError: the weights are missing or their checksum differs.
    """
    started = started or time.time()
    emit(f"start {name}")
    cfg, data = load_run(config_json, fit=name != "predict")
    method = get_method(cfg.method)(cfg)
    if declared and name not in method.stages:
        raise ConfigError(f"method {cfg.method} has no stage {name!r}")
    seed_everything(cfg.seed, cfg.threads)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    key = resume.stage_key(name, config_json, inputs or {}, weights_sha256) if cached else ""
    entry = resume.lookup(key) if key else None
    with tempfile.TemporaryDirectory(prefix="dcflow-weights-") as tmp:
        ctx = StageContext(
            data=without_labels(data), device=select_device(cfg.device), seed=cfg.seed
        )
        stage = OpenStage(name, cfg, data, method, ctx, out, started, key)
        if entry is not None:
            old = resume.restore(entry, out)
            emit(f"  resumed: reusing the finished {name} output ({entry.name})")
            stage.reused = finish(name, started, out, old["metrics"], old["curves"], skipped=True)
        elif weights_uri:
            ctx.weights = fetch_weights(weights_uri, weights_sha256, Path(tmp) / "weights.pt")
        yield stage
