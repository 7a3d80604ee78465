"""Throw-away servers for the stack tests: moto's S3 and a real ``mlflow server``, on 127.0.0.1.

Each runs in its own process group, is waited for with a deadline and is stopped (terminate, then
kill) when its context exits, whatever happened in between.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _module(name: str) -> list[str]:
    """``python -m name`` with this interpreter (its console script may live in another venv)."""
    if importlib.util.find_spec(name) is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[test]')")
    return [sys.executable, "-m", name]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # the group this fixture started, nothing else
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)


def _wait(proc: subprocess.Popen[bytes], ready: object, what: str, log: Path, limit: float) -> None:
    deadline = time.monotonic() + limit
    while not ready():  # type: ignore[operator]
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-2000:]
            pytest.fail(f"{what} did not start (exit code {proc.poll()}):\n{tail}")
        time.sleep(0.3)


@contextlib.contextmanager
def serve(
    argv: list[str], env: dict[str, str], log: Path, ready: object, what: str, limit: float
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``argv`` in a new session, wait until ``ready()``, stop it on exit."""
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            argv, stdout=fh, stderr=fh, env=env, start_new_session=True, cwd=log.parent
        )
        try:
            _wait(proc, ready, what, log, limit)
            yield proc
        finally:
            _stop(proc)


def port_open(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:port."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def http_ok(url: str) -> bool:
    """Whether ``url`` answers 2xx."""
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status < 300)
    except OSError:
        return False


@contextlib.contextmanager
def moto_s3(workdir: Path) -> Iterator[str]:
    """moto's S3 API in server mode; yields its endpoint URL."""
    port = free_port()
    argv = [*_module("moto.server"), "-H", "127.0.0.1", "-p", str(port)]
    with serve(argv, dict(os.environ), workdir / "moto.log", lambda: port_open(port), "moto", 60):
        yield f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def moto_bucket(workdir: Path, bucket: str) -> Iterator[str]:
    """:func:`moto_s3` with test credentials in the environment and ``bucket`` created."""
    import boto3

    mp = pytest.MonkeyPatch()
    for key, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}.items():
        mp.setenv(key, value)
    mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
    try:
        with moto_s3(workdir) as url:
            boto3.client("s3", endpoint_url=url).create_bucket(Bucket=bucket)
            yield url
    finally:
        mp.undo()


@contextlib.contextmanager
def mlflow_server(workdir: Path, artifacts: str, env: dict[str, str]) -> Iterator[str]:
    """``mlflow server`` (sqlite backend) proxying artifacts to ``artifacts``; yields its URL."""
    port = free_port()
    argv = [
        *_module("mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
        "--backend-store-uri", f"sqlite:///{workdir / 'mlflow.db'}",
        "--artifacts-destination", artifacts, "--workers", "1",
    ]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    with serve(argv, env, workdir / "mlflow.log", lambda: http_ok(url + "/health"), "mlflow", 180):
        yield url
