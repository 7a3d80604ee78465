"""``dcflow compare`` end to end on toy methods: interrupted, resumed, and rebuilt from MLflow."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

PLUGINS = Path(__file__).resolve().parents[1] / "pipelines" / "plugins"
ARGS = [
    "compare",
    "--methods",
    "toy-init-refine,toy-init-only",
    "--seeds",
    "0,1",
    "--set",
    "dataset.limit=150",
    "--out",
    "cmp",
]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PYTHONPATH"] = str(PLUGINS)
    env["DCFLOW_PLUGINS"] = "toy_layout"
    return env


def _dcflow(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "dcflow.cli", *args]
    return subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def resumed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, str]:
    root = tmp_path_factory.mktemp("compare")
    cmd = [sys.executable, "-m", "dcflow.cli", *ARGS]
    proc = subprocess.Popen(
        cmd, cwd=root, env=_env(), start_new_session=True, stderr=subprocess.DEVNULL
    )
    runs = root / "cmp" / "runs"
    deadline = time.time() + 300
    while time.time() < deadline and len(list(runs.glob("*.json"))) < 1:
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole process group, mid-grid
    proc.wait()
    done_before = len(list(runs.glob("*.json")))
    assert 1 <= done_before < 4
    second = _dcflow(ARGS, root)
    assert second.returncode == 0, second.stderr
    counts = json.loads((root / "cmp" / "counts.json").read_text())
    assert counts == {"reused": done_before, "ran": 4 - done_before, "failed": 0}
    return root, counts, second.stdout


def test_resume_runs_only_the_missing_cells(resumed: tuple[Path, dict, str]) -> None:
    root, counts, stdout = resumed
    assert f"{counts['reused']} reused, {counts['ran']} ran, 0 failed" in stdout
    assert len(list((root / "cmp" / "runs").glob("*.json"))) == 4


def test_report_lists_every_method_with_spread(resumed: tuple[Path, dict, str]) -> None:
    root, _, _ = resumed
    md = (root / "cmp" / "results.md").read_text()
    for method in ("toy-init-refine", "toy-init-only"):
        line = next(ln for ln in md.splitlines() if f"| {method} |" in ln)
        assert "| 0 1 |" in line and "±" in line
    for name in ("acc.png", "reliability_digits.png", "confusion_digits.png", "curves_digits.png"):
        assert (root / "cmp" / name).is_file(), name


def test_report_rebuilds_the_same_table_from_mlflow(resumed: tuple[Path, dict, str]) -> None:
    root, _, _ = resumed
    cid = json.loads((root / "cmp" / "comparison.json").read_text())["comparison"]
    rep = _dcflow(["report", "--comparison", cid, "--out", "rebuilt", "--no-log"], root)
    assert rep.returncode == 0, rep.stderr
    assert (root / "rebuilt" / "results.md").read_text() == (
        root / "cmp" / "results.md"
    ).read_text()


def test_report_errors_are_one_line(resumed: tuple[Path, dict, str]) -> None:
    root, _, _ = resumed
    missing = _dcflow(["report", "--experiment", "nope", "--out", "x"], root)
    assert missing.returncode == 5 and "no experiment 'nope'" in missing.stderr
    none = _dcflow(["report", "--comparison", "zzz", "--out", "x"], root)
    assert none.returncode == 3 and "no finished runs" in none.stderr
    for r in (missing, none):
        assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_bad_grid_fails_before_running(tmp_path: Path) -> None:
    bad = _dcflow(["compare", "--methods", "nope", "--out", "c"], tmp_path)
    assert bad.returncode == 2 and "unknown method 'nope'" in bad.stderr
    bad = _dcflow(["compare", "--methods", "aspc-da", "--seeds", "x", "--out", "c"], tmp_path)
    assert bad.returncode == 2 and "--seeds" in bad.stderr
    assert not (tmp_path / "c" / "runs").exists()


def test_the_ledger_resumes_a_comparison_without_its_mlflow_store(
    resumed: tuple[Path, dict, str], tmp_path: Path
) -> None:
    root, _, _ = resumed
    ledger = json.loads((root / "cmp" / "records.json").read_text())
    assert len(ledger) == 4 and {r["seed"] for r in ledger} == {0, 1}
    moved = tmp_path / "cmp"  # another machine: a fresh cwd, so a fresh .dcflow/mlflow.db
    moved.mkdir()
    for name in ("records.json", "comparison.json"):
        (moved / name).write_bytes((root / "cmp" / name).read_bytes())
    again = _dcflow(ARGS, tmp_path)
    assert again.returncode == 0, again.stderr
    assert json.loads((moved / "counts.json").read_text()) == {"reused": 4, "ran": 0, "failed": 0}
    assert (moved / "results.md").read_text() == (root / "cmp" / "results.md").read_text()
    assert "4 from" in again.stderr and not (moved / "confusion_digits.png").exists()
    (moved / "records.json").write_text("{broken")
    bad = _dcflow(ARGS, tmp_path)
    assert bad.returncode == 3 and "not a comparison ledger" in bad.stderr
