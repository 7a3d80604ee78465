"""`dcflow run --runner docker`: every stage in the image, same results as the subprocess one."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from dcflow_pipelines import docker_runner
from dcflow_pipelines.docker_runner import DockerPlan, container_user

from dcflow.cli import main
from dcflow.errors import ConfigError

pytestmark = pytest.mark.docker

TINY = [
    "--dataset", "fake", "--no-preset", "--quiet",
    "--set", "pretrain.epochs=3", "--set", "pretrain.hidden_dims=[16,16]",
    "--set", "refine.max_iter=3", "--set", "kmeans.n_init=1",
]  # fmt: skip


def test_mounts_keep_only_the_outermost_paths(tmp_path: Path) -> None:
    plan = DockerPlan("img")
    plan.add_writable(tmp_path / ".dcflow")
    plan.add_writable(tmp_path / ".dcflow" / "weights")
    plan.add_readable(tmp_path / ".dcflow" / "weights")
    (tmp_path / "data").mkdir()
    plan.add_readable(tmp_path / "data")
    plan.add_readable(tmp_path / "missing")
    assert plan.mounts() == [(tmp_path / ".dcflow", False), (tmp_path / "data", True)]


@pytest.mark.parametrize(("uid", "expected"), [(0, "10001:0"), (1000, "1000:1000")])
def test_containers_never_run_as_root(
    uid: int, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "getuid", lambda: uid)
    monkeypatch.setattr(os, "getgid", lambda: uid)
    user, groups = container_user()
    assert user == expected and not user.startswith("0:")
    assert groups == ([] if uid == 0 else ["0"])


def test_missing_image_is_one_line_naming_the_build(dcflow_image: str) -> None:
    with pytest.raises(ConfigError, match=r"is not on this machine: build it with `docker/build"):
        docker_runner.check_image("dcflow-no-such-image:0")


def _run(root: Path, name: str, runner: str, monkeypatch: pytest.MonkeyPatch) -> dict:
    monkeypatch.chdir(root)
    assert main(["run", "aspc-da", *TINY, "--runner", runner, "--json", f"{name}.json"]) == 0
    return json.loads((root / f"{name}.json").read_text())


def test_docker_runner_matches_subprocess_and_reuses_weights(
    dcflow_image: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("DCFLOW_WEIGHTS_STORE", raising=False)
    monkeypatch.setenv("DCFLOW_IMAGE", dcflow_image)
    (tmp_path / "sub").mkdir()
    (tmp_path / "dock").mkdir()
    sub = _run(tmp_path / "sub", "s", "subprocess", monkeypatch)
    first = _run(tmp_path / "dock", "d1", "docker", monkeypatch)
    second = _run(tmp_path / "dock", "d2", "docker", monkeypatch)
    assert first["metrics"] == sub["metrics"]  # same machine, same seed: identical
    assert first["stages"]["pretrain"]["skipped"] is False
    assert second["stages"]["pretrain"]["skipped"] is True
    assert second["metrics"] == first["metrics"]
    written = [p for p in Path(first["artifacts"]).rglob("*") if p.is_file()]
    # nothing ran as root: as root the containers run as the image's uid 10001, else as you
    assert {p.stat().st_uid for p in written} == {10001 if os.getuid() == 0 else os.getuid()}
    assert (tmp_path / "dock" / ".dcflow" / "mlflow.db").is_file()
