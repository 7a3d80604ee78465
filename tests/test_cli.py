"""The CLI: listings, effective config, and one-line errors with documented exit codes."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dcflow.cli import main


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dcflow.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def test_methods_and_datasets_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    assert "aspc-da" in out and "download-weights -> pretrain" in out
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    for name in ("digits", "usps", "mnist", "fashion-mnist", "npz:PATH"):
        assert name in out


def test_python_dash_m_dcflow_is_the_same_command() -> None:
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "dcflow", "methods"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and "aspc-da" in proc.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "dcflow", "run", "nope"], capture_output=True, text=True, timeout=120
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_config_shows_preset_and_overrides(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "aspc-da", "--set", "refine.tol=0.01", "--seed", "4"]) == 0
    out = capsys.readouterr().out
    assert "seed: 4" in out and "tol: 0.01" in out
    assert "- 512" in out  # digits preset hidden_dims [256, 256, 512]


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["run", "nope"], 2, "unknown method 'nope'"),
        (["run", "aspc-da", "--dataset", "nope"], 2, "unknown dataset 'nope'"),
        (["run", "aspc-da", "--set", "pretrain.epoch=3"], 2, "pretrain.epoch: unknown key"),
        (["run", "aspc-da", "--set", "pretrain.epochs=-1"], 2, "pretrain.epochs"),
        (["run", "aspc-da", "--set", "noequals"], 2, "key=value"),
        (["run", "aspc-da", "--config", "missing.yaml"], 2, "config file not found"),
        (["run", "aspc-da", "--dataset", "npz:missing.npz"], 3, "data file not found"),
    ],
)
def test_user_errors_are_one_line(args: list[str], code: int, needle: str, tmp_path: Path) -> None:
    proc = _cli(*args, cwd=tmp_path)
    assert proc.returncode == code, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("dcflow: error:"), proc.stderr
    assert needle in lines[0]
    assert "Traceback" not in proc.stderr


def test_bad_data_inside_a_stage_is_one_line(tmp_path: Path) -> None:
    np.savez(tmp_path / "bad.npz", x=np.zeros((5, 8, 8), dtype=np.uint8), y=np.arange(4))
    proc = _cli(
        "run", "aspc-da", "--dataset", f"npz:{tmp_path / 'bad.npz'}", "--quiet", cwd=tmp_path
    )
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("dcflow: error:")
    assert "y has shape (4,) but x has 5 samples" in proc.stderr
    assert not list((tmp_path / ".dcflow" / "weights").rglob("weights.pt"))
