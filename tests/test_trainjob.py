"""Kubeflow Trainer jobs (issue 22, item 3): manifests valid against the released CRDs, and the
launcher's wait loop: success, a failed job failing the task, refusal and timeout."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from dcflow.errors import ConfigError, StageError
from dcflow.jobspec import EnvRef, JobSettings, job_state, manifest
from dcflow.trainjob import run_job, worker_args
from tests import crd_schema

ENV = (EnvRef("AWS_ACCESS_KEY_ID", "secret", "dcflow-s3"),
       EnvRef("MLFLOW_TRACKING_URI", "configmap", "dcflow-config", True))  # fmt: skip
ARGS = worker_args("pretrain", "/mnt/s/job/config.json", "/mnt/s/job/out")


def _settings(kind: str, gpus: int = 4, workers: int = 2) -> JobSettings:
    return JobSettings(
        kind=kind,  # type: ignore[arg-type]
        workers=workers,
        gpus_per_worker=gpus,
        image="registry.example/dcflow:1-cuda",
        shared_pvc="shared",
        mount_path="/mnt/s",
        env=ENV,
        poll_seconds=0,
    )


CRD = {"trainjob": crd_schema.TRAINJOB, "pytorchjob": crd_schema.PYTORCHJOB}


@pytest.mark.parametrize("kind", ["trainjob", "pytorchjob"])
@pytest.mark.parametrize(("gpus", "workers"), [(4, 2), (0, 3), (1, 1)])
def test_manifests_validate_against_the_crd(kind: str, gpus: int, workers: int) -> None:
    obj = manifest("dcflow-pretrain-abc", _settings(kind, gpus, workers), ARGS)
    assert crd_schema.errors(obj, crd_schema.load(CRD[kind])) == []


def test_trainjob_content() -> None:
    spec = manifest("j", _settings("trainjob"), ARGS)["spec"]
    trainer = spec["trainer"]
    assert spec["runtimeRef"] == {"name": "torch-distributed"}
    assert (trainer["numNodes"], trainer["numProcPerNode"]) == (2, 4)
    assert trainer["resourcesPerNode"] == {"limits": {"nvidia.com/gpu": 4}}
    assert trainer["command"] == ["torchrun"]
    assert trainer["args"][:2] == ["-m", "dcflow.stages.train_worker"]
    secret = trainer["env"][0]["valueFrom"]["secretKeyRef"]
    assert secret == {"name": "dcflow-s3", "key": "AWS_ACCESS_KEY_ID", "optional": False}
    pod = spec["runtimePatches"][0]["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"][0]
    pod = pod["template"]["spec"]["template"]["spec"]
    assert pod["volumes"][0]["persistentVolumeClaim"] == {"claimName": "shared"}
    assert pod["containers"][0]["volumeMounts"][0]["mountPath"] == "/mnt/s"


def test_pytorchjob_content() -> None:
    spec = manifest("j", _settings("pytorchjob", 2, 3), ARGS)["spec"]
    reps = spec["pytorchReplicaSpecs"]
    assert (reps["Master"]["replicas"], reps["Worker"]["replicas"]) == (1, 2)
    assert spec["nprocPerNode"] == "2"
    container = reps["Worker"]["template"]["spec"]["containers"][0]
    assert container["resources"] == {"limits": {"nvidia.com/gpu": 2}}


def test_the_validator_can_fail() -> None:
    crd = crd_schema.load(crd_schema.TRAINJOB)
    good = manifest("j", _settings("trainjob"), ARGS)
    bad = copy.deepcopy(good)
    bad["spec"]["trainer"]["numWorkers"] = 2  # not a field: the API server would prune it
    assert any("numWorkers: unknown field" in e for e in crd_schema.errors(bad, crd))
    bad = copy.deepcopy(good)
    bad["spec"]["trainer"]["numNodes"] = "2"
    assert any("numNodes" in e for e in crd_schema.errors(bad, crd))
    bad = copy.deepcopy(good)
    del bad["spec"]["runtimeRef"]
    assert any("runtimeRef" in e for e in crd_schema.errors(bad, crd))


def test_settings_round_trip_and_errors() -> None:
    s = _settings("pytorchjob")
    assert JobSettings.from_dict(s.to_dict()) == s
    with pytest.raises(ConfigError, match="shared-pvc"):
        JobSettings(shared_pvc="")
    with pytest.raises(ConfigError, match="job kind"):
        JobSettings(kind="mpijob", shared_pvc="x")  # type: ignore[arg-type]


class FakeApi:
    """The slice of ``kubernetes.client.CustomObjectsApi`` that run_job uses."""

    def __init__(self, states: list[dict[str, Any]], refuse: int = 0) -> None:
        self.states, self.refuse = states, refuse
        self.created: list[tuple[str, dict[str, Any]]] = []
        self.deleted: list[str] = []

    def create_namespaced_custom_object(self, group: str, version: str, ns: str, plural: str,
                                        body: dict[str, Any]) -> None:  # fmt: skip
        if self.refuse:
            exc = RuntimeError("refused")
            exc.status = self.refuse  # type: ignore[attr-defined]
            raise exc
        self.created.append((plural, body))

    def get_namespaced_custom_object(self, group: str, version: str, ns: str, plural: str,
                                     name: str) -> dict[str, Any]:  # fmt: skip
        return self.states.pop(0) if len(self.states) > 1 else self.states[0]

    def delete_namespaced_custom_object(self, group: str, version: str, ns: str, plural: str,
                                        name: str) -> None:  # fmt: skip
        self.deleted.append(name)


def _status(kind: str, message: str = "") -> dict[str, Any]:
    return {"status": {"conditions": [{"type": kind, "status": "True", "message": message}]}}


RUNNING = {"status": {"conditions": [{"type": "Created", "status": "True"}]}}


@pytest.mark.parametrize(("kind", "done"), [("trainjob", "Complete"), ("pytorchjob", "Succeeded")])
def test_run_job_waits_until_done(kind: str, done: str) -> None:
    api = FakeApi([{}, RUNNING, RUNNING, _status(done)])
    logs: list[str] = []
    run_job("j", _settings(kind), ARGS, api=api, sleep=lambda s: None, log=logs.append)
    assert api.created[0][0] == f"{kind}s"
    assert any("succeeded" in line for line in logs)


def test_a_failed_job_fails_the_task() -> None:
    api = FakeApi([RUNNING, _status("Failed", "worker 1 OOMKilled")])
    with pytest.raises(StageError, match="TrainJob .*/j failed: worker 1 OOMKilled"):
        run_job("j", _settings("trainjob"), ARGS, api=api, sleep=lambda s: None, log=print)
    assert api.deleted == []  # kept for kubectl describe


@pytest.mark.parametrize(("status", "hint"), [(404, "CRD installed"), (403, "service account")])
def test_refused_creation_is_one_line(status: int, hint: str) -> None:
    with pytest.raises(StageError, match=hint) as err:
        run_job("j", _settings("trainjob"), ARGS, api=FakeApi([], refuse=status), log=print)
    assert "\n" not in str(err.value)


def test_timeout_deletes_the_job() -> None:
    s = JobSettings(shared_pvc="x", timeout_seconds=1, poll_seconds=0)
    api = FakeApi([RUNNING])
    clock = iter(range(100))
    with pytest.raises(StageError, match="ran past 1 s; deleted"):
        run_job("j", s, ARGS, api=api, sleep=lambda s: None, log=print,
                clock=lambda: float(next(clock)))  # fmt: skip
    assert api.deleted == ["j"]


def test_job_state_ignores_false_conditions() -> None:
    obj = {"status": {"conditions": [{"type": "Failed", "status": "False"}]}}
    assert job_state("trainjob", obj) == ("running", "")
