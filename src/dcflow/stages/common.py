"""Shared set-up of every stage process: config, method, data, device, seeds and the report."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import random
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from dcflow import artifacts as art
from dcflow.config import RunConfig
from dcflow.data import Dataset, load_dataset
from dcflow.errors import DcflowError, StageError
from dcflow.progress import emit

F = TypeVar("F", bound=Callable[..., Any])

WEIGHTS_FORMAT = 1  # bump when the meaning of stored weights changes


def default_weights_store() -> str:
    """``$DCFLOW_WEIGHTS_STORE`` or ``./.dcflow/weights``."""
    return os.environ.get("DCFLOW_WEIGHTS_STORE") or str(Path(".dcflow/weights").resolve())


def select_device(name: str) -> Any:
    """``auto`` -> CUDA when available, else CPU."""
    import torch

    if name == "cuda" and not torch.cuda.is_available():
        from dcflow.errors import ConfigError

        raise ConfigError("device=cuda requested but CUDA is not available")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def seed_everything(seed: int, threads: int | None) -> None:
    """Seed Python, NumPy and torch; optionally pin the CPU thread count."""
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if threads:
        torch.set_num_threads(threads)


def load_run(config_json: str) -> tuple[RunConfig, Dataset]:
    """Parse the config and load the dataset (with labels)."""
    cfg = RunConfig.from_json(config_json)
    return cfg, load_dataset(cfg.dataset)


def without_labels(data: Dataset) -> Dataset:
    """The dataset as every stage but ``evaluate`` sees it: labels removed."""
    return replace(data, y=None)


def weights_key(method: str, data: Dataset, pretrain_config: dict[str, Any], seed: int) -> str:
    """Cache key of pretrained weights: method, data fingerprint, pretrain config, seed."""
    payload = {
        "format": WEIGHTS_FORMAT,
        "method": method,
        "data": data.fingerprint(),
        "pretrain": pretrain_config,
        "seed": seed,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]


def finish(
    stage: str,
    started: float,
    out_dir: str | Path | None,
    metrics: dict[str, float],
    curves: dict[str, Any] | None = None,
    skipped: bool = False,
) -> dict[str, Any]:
    """Build the stage report, write it into the artifact, announce the end, return it."""
    ended = time.time()
    report = {
        "stage": stage,
        "seconds": round(ended - started, 3),
        "skipped": skipped,
        "metrics": {k: float(v) for k, v in metrics.items()},
        "curves": curves or {},
        "started": started,
        "ended": ended,
    }
    if out_dir is not None:
        art.save_json(out_dir, art.REPORT, report)
    shown = " ".join(f"{k}={float(v):.4g}" for k, v in list(metrics.items())[:4])
    emit(f"done {stage} in {report['seconds']:.1f}s {shown}".rstrip())
    return report


ERROR_TAG = "error"


def guard(fn: F) -> F:
    """Announce any failure as one ``[dcflow] error <exit code> <message>`` line, then re-raise.

    The line is what ``dcflow run`` shows the user; the traceback stays in the stage's log.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except DcflowError as exc:
            emit(f"{ERROR_TAG} {exc.exit_code} {exc}")
            raise
        except Exception as exc:
            emit(
                f"{ERROR_TAG} {StageError.exit_code} {fn.__name__} crashed: "
                f"{type(exc).__name__}: {exc}"
            )
            raise

    return wrapper  # type: ignore[return-value]
