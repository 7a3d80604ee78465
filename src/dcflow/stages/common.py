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


REQUIRE_CUDA_ENV = "DCFLOW_REQUIRE_CUDA"  # set by compile.py on every task that requests GPUs


def select_device(name: str) -> Any:
    """``auto`` -> CUDA when available, else CPU.

    Raises:
        StageError: the task was given a GPU (``DCFLOW_REQUIRE_CUDA=1``) but torch finds no CUDA
            (a CPU-only image, or no driver on the node): training on the CPU instead would
            silently take hours.
    """
    import torch

    if os.environ.get(REQUIRE_CUDA_ENV) == "1" and not torch.cuda.is_available():
        raise StageError(
            f"this task was given a GPU but torch {torch.__version__} finds no CUDA "
            f"(torch built for CUDA {torch.version.cuda or 'none'}): use the CUDA image "
            "(docker/build.sh --variant cuda) on a node with the NVIDIA driver"
        )
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


def load_run(config_json: str, fit: bool = True) -> tuple[RunConfig, Dataset]:
    """Parse the config and load the dataset (with labels); ``fit=False``: any N (predict)."""
    cfg = RunConfig.from_json(config_json)
    return cfg, load_dataset(cfg.dataset, fit=fit)


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
    """Write the stage report into the artifact, announce the end, return its compact form.

    The artifact's ``report.json`` holds everything, per-step ``curves`` included. The returned
    report has no curves: it is what travels between tasks as the ``reports`` string parameter,
    whose size must not grow with the number of epochs (KFP passes every task's inputs in one
    argv string, which Linux caps at 128 KiB). ``evaluate`` reads the curves back from the
    artifacts (:func:`dcflow.stages.evaluate.collect_curves`).
    """
    ended = time.time()
    report = {
        "stage": stage,
        "seconds": round(ended - started, 3),
        "skipped": skipped,
        "metrics": {k: float(v) for k, v in metrics.items()},
        "started": started,
        "ended": ended,
    }
    if out_dir is not None:
        art.save_json(out_dir, art.REPORT, {**report, "curves": curves or {}})
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
