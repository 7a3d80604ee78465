"""The kind end-to-end (e2e/run.sh) as a pytest: runs only where docker, kind, kubectl and helm
exist, the docker engine answers, and DCFLOW_E2E=1 opts in (it takes 15-25 minutes)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def _missing() -> str:
    """Why the end-to-end cannot run here, or "" when it can."""
    for tool in ("docker", "kind", "kubectl", "helm"):
        if shutil.which(tool) is None:
            return (
                f"{tool} is not installed (the kind end-to-end needs docker, kind, kubectl, helm)"
            )
    try:
        subprocess.run(["docker", "info"], capture_output=True, timeout=20, check=True)
    except (subprocess.SubprocessError, OSError):
        return "no docker engine answers `docker info`"
    if os.environ.get("DCFLOW_E2E") != "1":
        return "set DCFLOW_E2E=1 to run the kind end-to-end (15-25 minutes)"
    return ""


def test_kind_end_to_end() -> None:
    reason = _missing()
    if reason:
        pytest.skip(reason)
    proc = subprocess.run(
        ["bash", str(ROOT / "e2e" / "run.sh")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-5000:]
    assert "E2E OK" in output
