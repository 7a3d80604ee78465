"""Shared fixtures: one CPU thread, opt-in isolation from presets and services, npz writer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture
def isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No preset from the repository, no ./.dcflow writes, no real tracking or S3 service.

    Not autouse: modules opt in with ``pytestmark = pytest.mark.usefixtures("isolated_env")``.
    """
    empty = tmp_path_factory.mktemp("no-presets")
    monkeypatch.setenv("DCFLOW_CONFIG_DIR", str(empty))
    monkeypatch.setenv("DCFLOW_WEIGHTS_STORE", str(tmp_path_factory.mktemp("weights-default")))
    for var in ("MLFLOW_TRACKING_URI", "AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def write_npz(tmp_path: Path) -> Callable[..., Path]:
    """Write arrays into ``tmp_path/<name>`` with ``np.savez`` and return the path."""

    def write(name: str = "data.npz", **arrays: Any) -> Path:
        path = tmp_path / name
        np.savez(path, **arrays)
        return path

    return write


@pytest.fixture
def rng() -> np.random.Generator:
    """A fixed NumPy generator."""
    return np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _drop_handlers_on_closed_streams() -> None:
    """Remove log handlers left pointing at a stream an earlier test closed.

    kfp.local attaches stream handlers to whatever ``sys.stdout``/``sys.stderr`` was when it ran
    in-process (a test's capture, or the run's output filter); a later log line would then print
    "--- Logging error ---" with a traceback into the next test's stderr.
    """
    import logging

    loggers = [logging.getLogger(), *(
        lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    )]  # fmt: skip
    for lg in loggers:
        for h in list(lg.handlers):
            stream = getattr(h, "stream", None)
            if stream is not None and getattr(stream, "closed", False):
                lg.removeHandler(h)
