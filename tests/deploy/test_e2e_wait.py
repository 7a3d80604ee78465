"""e2e/run.sh's wait_for_url: sourced under bash with a stub ``curl`` first on PATH (nothing is
reached over the network and no cluster is needed)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "e2e" / "run.sh"
URL = "http://127.0.0.1:8888/apis/v2beta1/healthz"
BASH = shutil.which("bash")

# fails (with curl-like noise on stderr) until call number $CURL_OK_AFTER, then succeeds
STUB = """#!/bin/sh
echo "$*" >>"$CURL_LOG"
n=$(wc -l <"$CURL_LOG")
[ "$n" -ge "${CURL_OK_AFTER:-1000000}" ] && exit 0
echo "curl: (7) Failed to connect to 127.0.0.1 port 8888" >&2
exit 7
"""


def wait_for_url(tmp_path: Path, timeout: int, ok_after: int | None) -> tuple[int, str, int, float]:
    """Run ``wait_for_url URL TIMEOUT "KFP API"``; return rc, stderr, curl calls, seconds."""
    if BASH is None:
        pytest.skip("bash is not installed")
    stubs = tmp_path / "bin"
    stubs.mkdir()
    (stubs / "curl").write_text(STUB)
    (stubs / "curl").chmod(0o755)
    log = tmp_path / "curl.log"
    log.touch()
    env = {
        **os.environ,
        "PATH": f"{stubs}{os.pathsep}{os.environ['PATH']}",
        "CURL_LOG": str(log),
        "WAIT_INTERVAL": "0.1",
    }
    if ok_after is not None:
        env["CURL_OK_AFTER"] = str(ok_after)
    start = time.monotonic()
    proc = subprocess.run(
        [
            BASH,
            "-c",
            'source "$1" && wait_for_url "$2" "$3" "KFP API"',
            "bash",
            SCRIPT,
            URL,
            str(timeout),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,  # sourcing must not depend on the working directory
        env=env,
    )
    calls = len(log.read_text().splitlines())
    return proc.returncode, proc.stderr, calls, time.monotonic() - start


def test_a_health_check_that_never_answers_fails_after_its_timeout(tmp_path: Path) -> None:
    rc, err, calls, seconds = wait_for_url(tmp_path, timeout=1, ok_after=None)
    assert rc != 0
    assert err.splitlines() == [f"e2e: KFP API did not answer at {URL} within 1s"]
    assert calls >= 2  # it did retry
    assert 1 <= seconds < 20  # it waited its timeout, and no longer than a few tries more


def test_a_health_check_that_answers_returns_at_once(tmp_path: Path) -> None:
    rc, err, calls, seconds = wait_for_url(tmp_path, timeout=30, ok_after=1)
    assert (rc, err, calls) == (0, "", 1)
    assert seconds < 20


def test_a_health_check_that_answers_late_waits_for_it(tmp_path: Path) -> None:
    rc, err, calls, _ = wait_for_url(tmp_path, timeout=30, ok_after=3)
    assert (rc, err, calls) == (0, "", 3)
    assert all(URL in line for line in (tmp_path / "curl.log").read_text().splitlines())


def test_run_sh_waits_through_the_function_only() -> None:
    text = SCRIPT.read_text()
    assert re.search(
        r'^wait_for_url "http://127\.0\.0\.1:\$KFP_PORT/apis/v2beta1/healthz"', text, re.M
    )
    assert "$(seq" not in text  # no loop that runs out and carries on
