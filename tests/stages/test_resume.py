"""Stage cache behind ``--resume``: content keys, atomic entries, and a run killed mid-refine."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dcflow import artifacts as art
from dcflow.stages import resume


def _artifact(path: Path, value: float) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    art.save_npy(path, art.LABELS, np.array([value]))
    art.save_json(path, art.REPORT, {"seconds": value})
    return path


def test_digest_follows_content_not_reports(tmp_path: Path) -> None:
    a = _artifact(tmp_path / "a", 1.0)
    b = _artifact(tmp_path / "b", 1.0)
    art.save_json(b, art.REPORT, {"seconds": 99.0})  # timings differ, content does not
    assert resume.dir_digest(a) == resume.dir_digest(b)
    art.save_npy(b, art.LABELS, np.array([2.0]))
    assert resume.dir_digest(a) != resume.dir_digest(b)


def test_key_ignores_tags_but_not_config_inputs_or_weights(tmp_path: Path) -> None:
    a = str(_artifact(tmp_path / "a", 1.0))
    cfg = {"method": "m", "seed": 0, "tags": {"comparison": "x"}}
    key = resume.stage_key("refine", json.dumps(cfg), {"cluster-init": a}, "sha")
    same = resume.stage_key("refine", json.dumps({**cfg, "tags": {}}), {"cluster-init": a}, "sha")
    assert key == same
    assert key != resume.stage_key(
        "refine", json.dumps({**cfg, "seed": 1}), {"cluster-init": a}, "sha"
    )
    assert key != resume.stage_key("refine", json.dumps(cfg), {"cluster-init": a}, "other")
    art.save_npy(a, art.LABELS, np.array([5.0]))
    assert key != resume.stage_key("refine", json.dumps(cfg), {"cluster-init": a}, "sha")


def test_store_lookup_restore(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(resume.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv(resume.RESUME_ENV, "0")
    out = _artifact(tmp_path / "out", 3.0)
    resume.store("k1", out)
    assert resume.lookup("k1") is None  # cached, but not resuming
    monkeypatch.setenv(resume.RESUME_ENV, "1")
    entry = resume.lookup("k1")
    assert entry is not None
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    assert resume.restore(entry, fresh) == {"seconds": 3.0}
    assert art.load_npy(fresh, art.LABELS).tolist() == [3.0]
    (tmp_path / "cache" / "k2").mkdir()  # a half-written entry (no report) is never reused
    assert resume.lookup("k2") is None


SETTINGS = [
    "--set", "dataset.limit=300", "--set", "pretrain.hidden_dims=[64,64]",
    "--set", "pretrain.epochs=3", "--set", "kmeans.n_init=2", "--set", "threads=1",
    "--set", "refine.max_iter=60", "--set", "refine.tol=0",  # refine lasts long enough to kill
]  # fmt: skip


def _run(root: Path, *extra: str) -> dict:
    cmd = [sys.executable, "-m", "dcflow.cli", "run", "aspc-da", *SETTINGS, "--quiet", *extra]
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads((root / extra[extra.index("--json") + 1]).read_text())


def test_killed_run_resumes_from_the_last_finished_stage(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    cmd = [sys.executable, "-m", "dcflow.cli", "run", "aspc-da", *SETTINGS]
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if "start refine" in line:
            break
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "first.json").exists()
    first = _run(tmp_path, "--resume", "--json", "first.json")
    reused = {s for s, r in first["stages"].items() if r["skipped"]}
    assert "pretrain" in reused  # weights cache
    assert "cluster-init" in reused and "confident-sample-selection" in reused
    assert "refine" not in reused and "evaluate" not in reused
    again = _run(tmp_path, "--resume", "--json", "again.json")
    assert {s for s, r in again["stages"].items() if r["skipped"]} >= {"refine"}
    assert again["metrics"] == first["metrics"]
    plain = _run(
        tmp_path, "--json", "plain.json"
    )  # no --resume: everything recomputed, same result
    assert not any(r["skipped"] for s, r in plain["stages"].items() if s != "pretrain")
    assert plain["metrics"] == first["metrics"]
