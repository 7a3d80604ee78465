"""The compose stack up on this machine (stand-ins where no registry answers), and a docker-runner
run against it: stage artifacts and weights in the bucket, parent and stage runs in MLflow."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from mlflow.tracking import MlflowClient
from stack.servers import free_port

from dcflow.cli import main

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]
TINY = [
    "--dataset", "fake", "--no-preset", "--quiet",
    "--set", "pretrain.epochs=3", "--set", "pretrain.hidden_dims=[16,16]",
    "--set", "refine.max_iter=3", "--set", "kmeans.n_init=1",
]  # fmt: skip


def _compose() -> list[str]:
    plugin = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    if plugin.returncode == 0:
        return ["docker", "compose"]
    binary = Path(sys.executable).parent / "docker-compose"
    if binary.is_file():
        return [str(binary)]
    found = shutil.which("docker-compose")
    if not found:
        pytest.skip("no docker compose (pip install -e '.[test]' gives docker-compose)")
    return [found]


@pytest.fixture(scope="module")
def stack(dcflow_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    work = tmp_path_factory.mktemp("stack")
    ports = {k: free_port() for k in ("MINIO_PORT", "MINIO_CONSOLE_PORT", "POSTGRES_PORT")}
    ports["MLFLOW_PORT"] = free_port()
    env = {
        **ports,
        "MINIO_ROOT_USER": "dcflow",
        "MINIO_ROOT_PASSWORD": secrets.token_hex(12),
        "POSTGRES_USER": "mlflow",
        "POSTGRES_PASSWORD": secrets.token_hex(12),
        "POSTGRES_DB": "mlflow",
        "DCFLOW_BUCKET": "dcflow",
        "MLFLOW_BUCKET": "mlflow",
        "DCFLOW_IMAGE": dcflow_image,
    }
    env_file = work / "stack.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    project = f"dcflow-test-{secrets.token_hex(3)}"
    base = [*_compose(), "-p", project, "-f", "docker/compose.yaml", "-f"]
    base += ["docker/compose.standins.yaml", "--env-file", str(env_file)]
    up = subprocess.run(
        [*base, "up", "-d", "--wait", "--wait-timeout", "600"],
        cwd=ROOT, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    try:
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        yield {k: str(v) for k, v in env.items()}
    finally:
        subprocess.run(
            [*base, "down", "-v", "--timeout", "10"], cwd=ROOT, capture_output=True, timeout=300
        )


def test_docker_run_against_the_stack(
    stack: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3_url = f"http://127.0.0.1:{stack['MINIO_PORT']}"
    mlflow_url = f"http://127.0.0.1:{stack['MLFLOW_PORT']}"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", stack["MINIO_ROOT_USER"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", stack["MINIO_ROOT_PASSWORD"])
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("DCFLOW_IMAGE", stack["DCFLOW_IMAGE"])
    argv = ["run", "aspc-da", *TINY, "--runner", "docker", "--json", "run.json"]
    argv += ["--artifacts", "s3://dcflow/runs", "--weights-store", "s3://dcflow/weights"]
    assert main(argv) == 0
    summary = json.loads((tmp_path / "run.json").read_text())
    assert summary["artifacts"].startswith("s3://dcflow/runs/")

    s3 = boto3.client("s3", endpoint_url=s3_url)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="dcflow").get("Contents", [])]
    assert any(k.startswith("runs/") and k.endswith("/labels.npy") for k in keys), keys
    assert any(k.startswith("runs/") and k.endswith("/predictions.csv") for k in keys)
    assert any(k.startswith("weights/aspc-da/") and k.endswith("weights.pt") for k in keys)
    assert any(k.startswith("weights/aspc-da/") and k.endswith("weights.pt.sha256") for k in keys)

    # the runs, by a query to the server (not from the logs)
    client = MlflowClient(mlflow_url)
    exp = client.get_experiment_by_name("dcflow")
    assert exp is not None
    parents = client.search_runs([exp.experiment_id], "tags.`dcflow.kind` = 'pipeline'")
    assert [p.info.run_id for p in parents] == [summary["mlflow"]["run_id"]]
    parent = parents[0]
    assert set(parent.data.metrics) >= {"acc", "nmi", "ari"}
    children = client.search_runs(
        [exp.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert {c.data.tags["stage"] for c in children} == set(summary["stages"])
    logged = {f.path for f in client.list_artifacts(parent.info.run_id)}
    assert "predictions.csv" in logged
    mlflow_objects = s3.list_objects_v2(Bucket="mlflow").get("KeyCount", 0)
    assert mlflow_objects > 0  # MLflow's artifacts went through its proxy into the bucket
    assert os.environ["AWS_ENDPOINT_URL"] == s3_url
