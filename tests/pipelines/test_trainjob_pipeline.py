"""compile.py --workers: the pretrain of a data-parallel method becomes a Trainer-job launcher.

Issue 22, item 3: the compiled multi-worker pipeline for hadis validates against KFP's
PipelineSpec and the Trainer CRD; a failed job fails the task; a succeeded one publishes weights.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from dcflow_pipelines import compile as compile_cli  # noqa: E402

from dcflow.config import build_run_config
from dcflow.errors import StageError
from dcflow.jobspec import JobSettings, manifest
from dcflow.methods.registry import get_method
from dcflow.stages.pretrain import pretrain_job
from tests import crd_schema

JOB = ["--workers", "2", "--gpus-per-worker", "4", "--shared-pvc", "shared:/mnt/shared"]


def _compile(tmp: Path, method: str, *extra: str) -> tuple[dict[str, Any], dict[str, Any]]:
    assert compile_cli.main(["--method", method, "--out", str(tmp), *extra]) == 0
    docs = list(yaml.safe_load_all((tmp / f"{method}.yaml").read_text()))
    compile_cli.validate(docs)  # KFP's PipelineSpec and the kubernetes PlatformSpec
    return docs[0], docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


def _job_param(spec: dict[str, Any]) -> dict[str, Any]:
    text = json.dumps(spec)
    tasks = [
        t
        for comp in spec["components"].values()
        for t in comp.get("dag", {}).get("tasks", {}).values()
        if t["componentRef"]["name"] == "comp-pretrain-job"
    ]
    assert len(tasks) == 1, text[:200]
    raw = tasks[0]["inputs"]["parameters"]["job"]["runtimeValue"]["constant"]
    return dict(json.loads(raw))


@pytest.mark.parametrize("kind", ["trainjob", "pytorchjob"])
def test_hadis_multi_worker_pipeline_validates(tmp_path: Path, kind: str) -> None:
    spec, k8s = _compile(tmp_path, "hadis", *JOB, "--job-kind", kind, "--image", "reg/dcflow:2")
    execs = spec["deploymentSpec"]["executors"]
    assert "exec-pretrain" not in execs and "exec-pretrain-job" in execs
    launcher = execs["exec-pretrain-job"]["container"]
    assert not launcher.get("resources", {}).get("accelerator")  # a light task
    assert launcher["image"] == "reg/dcflow:2"
    assert "exec-refine" not in execs  # ProPos/HaDis refine is data-parallel: a job as well
    assert not execs["exec-refine-job"]["container"].get("resources", {}).get("accelerator")
    assert execs["exec-evaluate"]["container"]["image"] == "reg/dcflow:2"
    for task in ("exec-pretrain-job", "exec-refine-job"):
        assert k8s[task]["pvcMount"][0]["mountPath"] == "/mnt/shared"
    settings = JobSettings.from_dict(_job_param(spec))
    assert (settings.kind, settings.workers, settings.gpus_per_worker) == (kind, 2, 4)
    assert settings.image == "reg/dcflow:2-cuda"
    obj = manifest("dcflow-pretrain-0123456789", settings, ["-m", "x"])
    crd = crd_schema.load(crd_schema.TRAINJOB if kind == "trainjob" else crd_schema.PYTORCHJOB)
    assert crd_schema.errors(obj, crd) == []
    env = {e.name for e in settings.env}
    assert {"AWS_ACCESS_KEY_ID", "MLFLOW_TRACKING_URI"} <= env


def test_one_process_methods_stay_plain_tasks(tmp_path: Path) -> None:
    spec, _ = _compile(tmp_path, "aspc-da", *JOB)
    assert "exec-pretrain" in spec["deploymentSpec"]["executors"]
    assert "exec-pretrain-job" not in spec["deploymentSpec"]["executors"]
    spec, _ = _compile(tmp_path, "ruc", *JOB)  # SimCLR, SCAN and the co-training are jobs
    execs = set(spec["deploymentSpec"]["executors"])
    assert {"exec-pretrain-job", "exec-cluster-init-job", "exec-refine-job"} <= execs
    assert not {"exec-cluster-init", "exec-refine"} & execs
    assert "exec-confident-sample-selection" in execs  # the light stage stays a plain task
    refine_inputs = spec["root"]["dag"]["tasks"]["refine-job"]["inputs"]["artifacts"]
    assert refine_inputs["selection"]["taskOutputArtifact"]["producerTask"] == (
        "confident-sample-selection"
    )


def test_scan_trains_every_stage_as_a_job(tmp_path: Path) -> None:
    """SimCLR, the SCAN step and self-labelling: three launchers, all light, all on the PVC."""
    spec, k8s = _compile(tmp_path, "scan", *JOB)
    execs = spec["deploymentSpec"]["executors"]
    jobs = ("exec-pretrain-job", "exec-cluster-init-job", "exec-refine-job")
    assert set(jobs) <= set(execs) and not {"exec-cluster-init", "exec-refine"} & set(execs)
    for task in jobs:
        assert not execs[task]["container"].get("resources", {}).get("accelerator")
        assert k8s[task]["pvcMount"][0]["mountPath"] == "/mnt/shared"


def test_workers_without_a_shared_volume_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        compile_cli.main(["--method", "hadis", "--out", str(tmp_path), "--workers", "2"])
    assert exc.value.code == 2
    assert "--shared-pvc" in capsys.readouterr().err


class LocalTrainer:
    """A Kubernetes API whose 'cluster' runs the job's torchrun command on this machine."""

    def __init__(self, fail: bool = False) -> None:
        self.fail, self.done = fail, False

    def create_namespaced_custom_object(self, group: str, version: str, ns: str, plural: str,
                                        body: dict[str, Any]) -> None:  # fmt: skip
        trainer = body["spec"]["trainer"]
        nproc = str(trainer["numProcPerNode"] * trainer["numNodes"])
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", nproc, *trainer["args"]]  # fmt: skip
        if self.fail:
            cmd[cmd.index("dcflow.stages.train_worker") + 1] = "no-such-stage"
        self.rc = subprocess.run(cmd, capture_output=True, text=True, check=False).returncode

    def get_namespaced_custom_object(self, *args: str) -> dict[str, Any]:
        kind = "Complete" if self.rc == 0 else "Failed"
        cond = {"type": kind, "status": "True", "message": f"exit code {self.rc}"}
        return {"status": {"conditions": [cond]}}


def _config() -> str:
    cls = get_method("cc")
    over = [*cls.smoke, "dataset.limit=200", "threads=1"]
    return build_run_config("cc", cls.Config, {"name": "digits"}, None, over).to_json()


def _job(tmp: Path) -> str:
    s = JobSettings(workers=1, gpus_per_worker=2, shared_pvc="x", mount_path=str(tmp / "shared"),
                    namespace="ns", poll_seconds=0)  # fmt: skip
    return json.dumps(s.to_dict())


def test_launcher_publishes_the_jobs_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    out = pretrain_job(_config(), str(tmp_path / "store"), str(tmp_path / "out"), _job(tmp_path),
                       "dcflow-pretrain-t", api=LocalTrainer())  # fmt: skip
    assert out["weights_uri"] and len(out["weights_sha256"]) == 64
    assert out["report"]["metrics"]["samples_per_second"] > 0
    assert not (tmp_path / "shared" / "dcflow-pretrain-t").exists()  # cleaned up


def test_refine_job_runs_hadis_em_epochs_in_the_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dcflow.handoff import RefineOut
    from dcflow.stages.cluster_init import cluster_init
    from dcflow.stages.pretrain import pretrain
    from dcflow.stages.refine import refine_job

    monkeypatch.chdir(tmp_path)
    cls = get_method("hadis")
    over = [*cls.smoke, "dataset.limit=200", "threads=1"]
    config = build_run_config("hadis", cls.Config, {"name": "digits"}, None, over).to_json()
    pre = pretrain(config, str(tmp_path / "store"), str(tmp_path / "pre"))
    weights = (pre["weights_uri"], pre["weights_sha256"])
    cluster_init(config, str(tmp_path / "init"), *weights)
    args = (config, str(tmp_path / "init"), str(tmp_path / "refine"), "", *weights, _job(tmp_path))
    report = refine_job(*args, "dcflow-refine-t", api=LocalTrainer())
    result = RefineOut.load(tmp_path / "refine")
    assert result.labels.shape == (200,) and result.model is not None
    assert "changed_last" in report["metrics"]
    assert not (tmp_path / "shared" / "dcflow-refine-t").exists()  # cleaned up
    with pytest.raises(StageError, match="TrainJob ns/dcflow-refine-f failed: exit code"):
        refine_job(*args[:2], str(tmp_path / "r2"), *args[3:], "dcflow-refine-f",
                   api=LocalTrainer(fail=True))  # fmt: skip


def test_ruc_cluster_init_and_refine_jobs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """RUC on the cluster path: the SCAN step as a cluster-init job, then the co-training as a
    refine job that reads the selection artifact from the shared volume."""
    from dcflow.handoff import ClusterInitOut, RefineOut
    from dcflow.stages.cluster_init import cluster_init_job
    from dcflow.stages.confident_sample_selection import confident_sample_selection
    from dcflow.stages.pretrain import pretrain
    from dcflow.stages.refine import refine_job

    monkeypatch.chdir(tmp_path)
    cls = get_method("ruc")
    over = [*cls.smoke, "dataset.limit=200", "threads=1"]
    config = build_run_config("ruc", cls.Config, {"name": "digits"}, None, over).to_json()
    pre = pretrain(config, str(tmp_path / "store"), str(tmp_path / "pre"))
    weights = (pre["weights_uri"], pre["weights_sha256"])
    args = (config, str(tmp_path / "init"), *weights, _job(tmp_path))
    report = cluster_init_job(*args, "dcflow-cluster-init-t", api=LocalTrainer())
    init = ClusterInitOut.load(tmp_path / "init")
    assert init.labels.shape == (200,) and init.neighbors is not None
    assert "scan_best_head" in report["metrics"]
    assert not (tmp_path / "shared" / "dcflow-cluster-init-t").exists()  # cleaned up
    with pytest.raises(StageError, match="TrainJob ns/dcflow-cluster-init-f failed: exit code"):
        cluster_init_job(config, str(tmp_path / "i2"), *args[2:], "dcflow-cluster-init-f",
                         api=LocalTrainer(fail=True))  # fmt: skip
    assert not (tmp_path / "i2" / "labels.npy").exists()
    confident_sample_selection(config, str(tmp_path / "init"), str(tmp_path / "sel"))
    dirs = (str(tmp_path / "init"), str(tmp_path / "refine"), str(tmp_path / "sel"))
    refine_job(config, *dirs, *weights, _job(tmp_path), "dcflow-refine-t", api=LocalTrainer())
    result = RefineOut.load(tmp_path / "refine")
    assert result.labels.shape == (200,) and result.selected is not None


def test_a_failed_job_fails_the_launcher(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StageError, match="TrainJob ns/dcflow-pretrain-f failed: exit code"):
        pretrain_job(_config(), str(tmp_path / "store"), str(tmp_path / "out"), _job(tmp_path),
                     "dcflow-pretrain-f", api=LocalTrainer(fail=True))  # fmt: skip
    assert not list((tmp_path / "store").rglob("*.pt"))  # nothing published
