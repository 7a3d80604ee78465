"""MLflow in a pod: no local fallback, failures fail the task, KFP's own MLflow run is used."""

import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from dcflow import tracking
from dcflow.errors import ServiceError

REPORTS = [
    {"stage": "cluster-init", "seconds": 1.0, "skipped": False, "metrics": {"inertia": 2.0},
     "started": time.time() - 5, "ended": time.time() - 4,
     "curves": {"loss": [[1, 0.5], [2, 0.25]]}},
]  # fmt: skip


def _record(uri: str) -> dict:
    return dict(
        tracking_uri=uri,
        experiment="dcflow",
        run_name="aspc-da-digits-s0",
        tags={"method": "aspc-da"},
        params={"seed": 0},
        metrics={"acc": 0.9},
        stage_reports=REPORTS,
        files=[],
    )


def test_empty_tracking_uri_in_a_pod_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    with pytest.raises(ServiceError, match="no MLflow tracking URI in this pod"):
        tracking.resolve_tracking_uri("")


def test_failed_log_in_a_pod_fails_instead_of_a_pending_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(tracking.PENDING_ENV, str(tmp_path / "pending"))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    with pytest.raises(ServiceError):
        tracking.log_or_defer(**_record("http://127.0.0.1:9"))
    assert not (tmp_path / "pending").exists() or not list((tmp_path / "pending").iterdir())


def test_outside_a_pod_the_record_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(tracking.PENDING_ENV, str(tmp_path / "pending"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    ids = tracking.log_or_defer(**_record("http://127.0.0.1:9"))
    assert ids["pending"] and Path(ids["pending"]).is_file()


def test_kfp_mlflow_integration_run_is_the_parent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment("kfp-runs")
    root = client.create_run(exp, run_name="kfp-run").info.run_id
    task = client.create_run(
        exp, run_name="evaluate", tags={"mlflow.parentRunId": root}
    ).info.run_id
    monkeypatch.setenv("MLFLOW_RUN_ID", task)
    ids = tracking.log_pipeline_run(**_record(uri))
    assert ids["run_id"] == root and ids["experiment_id"] == exp
    run = client.get_run(root)
    assert run.data.metrics["acc"] == 0.9 and run.data.tags["dcflow.kind"] == "pipeline"
    assert run.info.status == "RUNNING"  # KFP closes its own runs
    tops = client.search_runs([exp], "tags.`dcflow.kind` = 'pipeline'")
    assert [r.info.run_id for r in tops] == [root]  # no unlinked parent of our own
    stages = client.search_runs([exp], f"tags.mlflow.parentRunId = '{root}'")
    assert {r.data.tags.get("stage") for r in stages} >= {"cluster-init"}
