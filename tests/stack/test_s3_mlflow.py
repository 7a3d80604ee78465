"""ASPC-DA against S3 (moto server) and a real MLflow server whose artifacts go to that S3.

Only the four standard variables point ``dcflow run`` at the services: MLFLOW_TRACKING_URI,
AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dcflow.cli import main

from .servers import mlflow_server, moto_s3

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]  # servers stop in teardown

BUCKET = "dcflow"
KEY_ID = "AKIADCFLOWTEST7Q3Z"  # test credentials: they must show up nowhere
SECRET = "dcflow-test-secret-5b9e1c7d"
SETTINGS = [
    "--set", "dataset.limit=300", "--set", "pretrain.hidden_dims=[64,64]",
    "--set", "pretrain.epochs=3", "--set", "refine.max_iter=2", "--set", "kmeans.n_init=2",
    "--set", "threads=1", "--artifacts", f"s3://{BUCKET}/runs",
    "--weights-store", f"s3://{BUCKET}/weights",
]  # fmt: skip


class Stack:
    """The services, the runs made against them and what each printed."""

    def __init__(self, root: Path, s3: str, mlflow: str) -> None:
        self.root, self.s3, self.mlflow = root, s3, mlflow
        self.outputs: dict[str, tuple[int, str, dict[str, Any] | None]] = {}

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.s3)

    def keys(self, prefix: str = "") -> list[str]:
        pages = (
            self.client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        )
        return [o["Key"] for page in pages for o in page.get("Contents", [])]

    def run(
        self, name: str, capfd: pytest.CaptureFixture[str] | None = None
    ) -> tuple[int, str, dict | None]:
        """``dcflow run`` with SETTINGS; returns (exit code, what it printed, its summary)."""
        code = main(["run", "aspc-da", *SETTINGS, "--json", str(self.root / f"{name}.json")])
        out, err = capfd.readouterr() if capfd else ("", "")
        summary = self.root / f"{name}.json"
        result = (code, out + err, json.loads(summary.read_text()) if code == 0 else None)
        self.outputs[name] = result
        return result


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("stack")
    mp = pytest.MonkeyPatch()
    try:
        for var in ("AWS_PROFILE", "DCFLOW_WEIGHTS_STORE", "MLFLOW_S3_ENDPOINT_URL"):
            mp.delenv(var, raising=False)
        mp.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
        mp.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        mp.setenv("OMP_NUM_THREADS", "1")
        mp.chdir(root)
        with moto_s3(root) as s3:
            mp.setenv("AWS_ENDPOINT_URL", s3)
            import boto3

            boto3.client("s3", endpoint_url=s3).create_bucket(Bucket=BUCKET)
            env = {**os.environ, "MLFLOW_S3_ENDPOINT_URL": s3}
            with mlflow_server(root, f"s3://{BUCKET}/mlflow", env) as url:
                mp.setenv("MLFLOW_TRACKING_URI", url)
                yield Stack(root, s3, url)
    finally:
        mp.undo()


@pytest.fixture(scope="module")
def two_runs(stack: Stack) -> tuple[dict[str, Any], dict[str, Any]]:
    first, second = stack.run("first"), stack.run("second")
    assert first[0] == 0, first[1][-2000:]
    assert second[0] == 0, second[1][-2000:]
    assert first[2] is not None and second[2] is not None
    print(  # the acceptance figures: both wall times
        f"\nS3 weights store: first run {first[2]['wall_seconds']:.1f} s (pretrain ran), "
        f"second run {second[2]['wall_seconds']:.1f} s (pretrain skipped)"
    )
    return first[2], second[2]


def test_stage_artifacts_weights_and_mlflow_artifacts_in_the_bucket(
    stack: Stack, two_runs: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    first, _ = two_runs
    run_prefix = first["artifacts"].removeprefix(f"s3://{BUCKET}/")
    assert first["artifacts"].startswith(f"s3://{BUCKET}/runs/")
    keys = set(stack.keys(run_prefix + "/"))
    for stage, name in [
        ("cluster-init", "embeddings.npy"),
        ("confident-sample-selection", "selected.npz"),
        ("refine", "labels.npy"),
        ("evaluate", "metrics.json"),
        ("evaluate", "predictions.csv"),
    ]:
        assert f"{run_prefix}/{stage}/out/{name}" in keys, (stage, name)
    assert first["predictions"].startswith(first["artifacts"] + "/")
    assert first["predictions"].removeprefix(f"s3://{BUCKET}/") in keys
    weights = [k for k in stack.keys("weights/aspc-da/") if k.endswith("/weights.pt")]
    assert len(weights) == 1
    assert weights[0] + ".sha256" in stack.keys("weights/")
    mlflow_keys = stack.keys("mlflow/")
    run_id = first["mlflow"]["run_id"]
    for name in ("predictions.csv", "confusion.png", "config.json"):
        assert any(k.endswith(f"/{run_id}/artifacts/{name}") for k in mlflow_keys), name


def test_mlflow_server_holds_the_parent_run(
    stack: Stack, two_runs: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    from mlflow.tracking import MlflowClient

    first, _ = two_runs
    assert first["mlflow"]["tracking_uri"] == stack.mlflow
    parent = MlflowClient(tracking_uri=stack.mlflow).get_run(first["mlflow"]["run_id"])
    assert {"acc", "nmi", "ari"} <= set(parent.data.metrics)
    assert parent.data.metrics["acc"] == pytest.approx(first["metrics"]["acc"])


def test_second_run_skips_pretrain(two_runs: tuple[dict[str, Any], dict[str, Any]]) -> None:
    first, second = two_runs
    assert first["stages"]["pretrain"]["skipped"] is False
    assert second["stages"]["download-weights"]["metrics"]["found"] == 1.0
    assert second["stages"]["pretrain"]["skipped"] is True
    assert second["metrics"] == first["metrics"]


def test_no_credential_in_logs_summary_or_mlflow(
    stack: Stack, two_runs: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=stack.mlflow)
    texts = []
    for summary in two_runs:
        texts.append(json.dumps(summary))
        texts.append(Path(summary["log"]).read_text(errors="replace"))
        run = client.get_run(summary["mlflow"]["run_id"])
        texts.append(json.dumps({**run.data.params, **run.data.tags}))
    texts += [p.read_text(errors="replace") for p in stack.root.glob("*.log")]  # server logs
    for text in texts:
        assert KEY_ID not in text and SECRET not in text


def test_corrupt_weights_fail_clearly_and_are_never_used(
    stack: Stack,
    two_runs: tuple[dict[str, Any], dict[str, Any]],
    capfd: pytest.CaptureFixture[str],
) -> None:
    (weights,) = [k for k in stack.keys("weights/aspc-da/") if k.endswith("/weights.pt")]
    body = stack.client().get_object(Bucket=BUCKET, Key=weights)["Body"].read()
    stack.client().put_object(Bucket=BUCKET, Key=weights, Body=body[:-8] + b"tampered")
    runs_before = set(stack.keys("runs/"))
    code, output, _ = stack.run("corrupt", capfd)
    assert code == 4, output[-2000:]
    errors = [line for line in output.splitlines() if line.startswith("dcflow: error:")]
    assert len(errors) == 1 and "sha256 mismatch" in errors[0], output[-2000:]
    assert "start cluster-init" not in output and "start refine" not in output
    assert set(stack.keys("runs/")) == runs_before  # nothing of the failed run was published
    assert KEY_ID not in output and SECRET not in output
