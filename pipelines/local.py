"""Execute a method's pipeline on this machine with kfp.local (each stage its own process).

The runner's own log and every stage's output go to a log file; the terminal shows only the
``[dcflow]`` lines the stages print (start/end of each stage, progress bars, errors).
"""

import contextlib
import io
import json
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from dcflow_pipelines.docker_runner import DockerPlan, check_image, make_runner, set_image

from dcflow.config import RunConfig
from dcflow.errors import DcflowError, StageError

_LINE = re.compile(r"\[dcflow\] (.*)$")
_ERROR = re.compile(r"\[dcflow\] error (\d+) (.*)$")


class _Filter(io.TextIOBase):
    """A stdout stand-in: everything to the log file, ``[dcflow]`` lines to the terminal."""

    def __init__(self, log: TextIO, terminal: TextIO, quiet: bool) -> None:
        self.log, self.terminal, self.quiet = log, terminal, quiet
        self.buffer_text = ""
        self.stage_errors: list[tuple[int, str]] = []

    def write(self, text: str) -> int:
        self.log.write(text)
        self.buffer_text += text
        while "\n" in self.buffer_text:
            line, self.buffer_text = self.buffer_text.split("\n", 1)
            self._line(line)
        return len(text)

    def _line(self, line: str) -> None:
        err = _ERROR.search(line)
        if err:
            self.stage_errors.append((int(err.group(1)), err.group(2).strip()))
            return
        match = _LINE.search(line)
        if match and not self.quiet:
            self.terminal.write(match.group(1) + "\n")
            self.terminal.flush()

    def flush(self) -> None:
        if not self.log.closed:
            self.log.flush()

    @property
    def closed(self) -> bool:
        """Closed with its log file (a log handler left holding it can then be dropped)."""
        return self.log.closed


@contextlib.contextmanager
def _scratch_tmpdir() -> Iterator[None]:
    """Point ``TMPDIR`` of the stage processes at a directory removed when the run ends.

    Every KFP lightweight component starts with ``mktemp -d`` and writes its source there
    (``ephemeral_component.py``); nothing removes it, so each local run used to leave one
    directory per stage in the system temp dir (thousands after a test suite).
    """
    tempfile.gettempdir()  # cache this process's temp dir before TMPDIR changes
    saved = os.environ.get("TMPDIR")
    with tempfile.TemporaryDirectory(prefix="dcflow-stages-") as scratch:
        os.environ["TMPDIR"] = scratch
        try:
            yield
        finally:
            if saved is None:
                os.environ.pop("TMPDIR", None)
            else:
                os.environ["TMPDIR"] = saved


def run_local(
    cfg: RunConfig,
    pipeline_root: Path,
    weights_store: str,
    tracking_uri: str,
    experiment: str,
    log_path: Path,
    quiet: bool = False,
    docker: DockerPlan | None = None,
) -> dict[str, Any]:
    """Compile ``cfg.method``'s pipeline and run it with kfp.local.

    Every stage runs in its own process (``kfp.local.SubprocessRunner``), or, given ``docker``,
    in its own container of the dcflow image (:mod:`dcflow_pipelines.docker_runner`).

    Returns:
        The summary returned by the evaluate stage, plus ``artifacts`` (the run's directory).

    Raises:
        DcflowError: the first error a stage reported (same exit code), or StageError.
    """
    from dcflow_pipelines.build import build
    from dcflow_pipelines.cluster import ClusterSettings

    # kfp.local honours retry policies: a cluster's retries (2, backoff 30 s then 60 s) would make
    # every failing local stage sleep 90 s before the error reaches the user. Locally: no retries.
    pipeline = build(cfg.method, default_config=cfg.to_json(), settings=ClusterSettings.local())
    arguments = {
        "config": cfg.to_json(),
        "weights_store": weights_store,
        "tracking_uri": tracking_uri,
        "experiment": experiment,
    }
    output = execute(pipeline, arguments, pipeline_root, log_path, quiet, docker)
    summary: dict[str, Any] = json.loads(output)
    summary["artifacts"] = str(Path(summary.pop("evaluate_dir")).parent.parent)
    summary["log"] = str(log_path)
    return summary


def run_sweep_local(
    cfg: RunConfig,
    ks: list[int],
    criterion: str,
    pipeline_root: Path,
    weights_store: str,
    tracking_uri: str,
    experiment: str,
    log_path: Path,
    quiet: bool = False,
) -> dict[str, Any]:
    """Run ``cfg.method``'s sweep-k pipeline (:mod:`dcflow_pipelines.sweep`) with kfp.local.

    Returns:
        The choose-k summary (chosen K, reason, every criterion's pick, the table, the points).
    """
    from dcflow_pipelines.cluster import ClusterSettings
    from dcflow_pipelines.sweep import build_sweep

    pipeline = build_sweep(
        cfg.method, default_config=cfg.to_json(), settings=ClusterSettings.local()
    )
    arguments = {
        "ks": ks,
        "config": cfg.to_json(),
        "criterion": criterion,
        "weights_store": weights_store,
        "tracking_uri": tracking_uri,
        "experiment": experiment,
    }
    summary: dict[str, Any] = json.loads(
        execute(pipeline, arguments, pipeline_root, log_path, quiet, None)
    )
    summary["log"] = str(log_path)
    return summary


def execute(
    pipeline: Any,
    arguments: dict[str, Any],
    pipeline_root: Path,
    log_path: Path,
    quiet: bool,
    docker: DockerPlan | None,
) -> str:
    """Run a built pipeline with kfp.local; return its output; stage errors become one line."""
    from kfp import local

    pipeline_root.mkdir(parents=True, exist_ok=True)
    runner: Any = local.SubprocessRunner(use_venv=False)
    if docker is not None:
        check_image(docker.image)  # cheap; run_local may be called without the CLI's check
        set_image(pipeline, docker.image)
        runner = make_runner(docker, pipeline_root.resolve())
    log_path.parent.mkdir(parents=True, exist_ok=True)
    real_stdout = sys.stdout
    with open(log_path, "w") as log, _scratch_tmpdir():
        filt = _Filter(log, sys.stderr, quiet)
        sys.stdout = filt  # type: ignore[assignment]
        try:
            warnings.filterwarnings("ignore", message=".*non-Python base image.*")
            # cluster settings (requests, retries, kfp-kubernetes) are for KFP backends only
            warnings.filterwarnings("ignore", message=".*no effect in the current local runner.*")
            local.init(
                runner=runner,
                pipeline_root=str(pipeline_root.resolve()),
                raise_on_error=True,
            )
            task = pipeline(**arguments)
        except Exception as exc:  # noqa: BLE001 - turned into one line below
            sys.stdout = real_stdout
            if filt.stage_errors:
                code, message = filt.stage_errors[0]
                err = DcflowError(message)
                err.exit_code = code
                raise err from None
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise StageError(f"pipeline failed: {first} (log: {log_path})") from None
        finally:
            sys.stdout = real_stdout
    return str(task.output)
