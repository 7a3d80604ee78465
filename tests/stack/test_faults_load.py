"""Faults and load against real services: a flaky S3 and eight pipelines at once.

- A proxy on 127.0.0.1 in front of moto's S3 answers the first requests (and every 7th after)
  with ``503 SlowDown``: the storage module's retries with backoff carry the run through.
- Eight small pipelines run at once against one MLflow server and one S3 server: all succeed, and
  each run's MLflow metrics and S3 artifacts are its own.
"""

from __future__ import annotations

import csv
import http.client
import http.server
import io
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from dcflow.cli import main

from .servers import mlflow_server, moto_s3

pytestmark = pytest.mark.slow
BUCKET = "dcflow"
PLUGINS = Path(__file__).resolve().parents[1] / "pipelines" / "plugins"
TINY = [
    "--set", "dataset.limit=200", "--set", "pretrain.hidden_dims=[32,32]",
    "--set", "pretrain.epochs=2", "--set", "refine.max_iter=2", "--set", "kmeans.n_init=1",
    "--set", "threads=1",
]  # fmt: skip


class FlakyProxy(http.server.ThreadingHTTPServer):
    """Forwards to ``upstream`` but fails request 1..``first`` and every ``every``-th after."""

    def __init__(self, upstream: str, first: int = 4, every: int = 7) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.upstream, self.first, self.every = urlsplit(upstream), first, every
        self.count = self.failed = 0
        self.lock = threading.Lock()

    def should_fail(self) -> bool:
        with self.lock:
            self.count += 1
            fail = self.count <= self.first or self.count % self.every == 0
            self.failed += fail
            return fail


class _Handler(http.server.BaseHTTPRequestHandler):
    server: FlakyProxy
    protocol_version = "HTTP/1.1"

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.server.should_fail():
            msg = b"<Error><Code>SlowDown</Code><Message>injected</Message></Error>"
            self.send_response(503)
            self.send_header("Content-Length", str(len(msg)))
            self.end_headers()
            self.wfile.write(msg)
            return
        up = self.server.upstream
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
        conn.request(self.command, self.path, body=body, headers=dict(self.headers))
        resp = conn.getresponse()
        data = resp.read()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        conn.close()

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward  # noqa: N815

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("faults")
    env = {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }  # fmt: skip
    mp = pytest.MonkeyPatch()
    for k, v in env.items():
        mp.setenv(k, v)
    try:
        with moto_s3(root) as s3:
            import boto3

            boto3.client("s3", endpoint_url=s3).create_bucket(Bucket=BUCKET)
            server_env = {**os.environ, "MLFLOW_S3_ENDPOINT_URL": s3}
            with mlflow_server(root, f"s3://{BUCKET}/mlflow", server_env) as url:
                yield {"root": root, "s3": s3, "mlflow": url}
    finally:
        mp.undo()


def test_transient_s3_errors_are_retried(
    services: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = FlakyProxy(services["s3"])
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{proxy.server_address[1]}")
        monkeypatch.setenv("MLFLOW_TRACKING_URI", services["mlflow"])
        args = ["run", "aspc-da", *TINY, "--weights-store", f"s3://{BUCKET}/flaky-weights"]
        args += ["--artifacts", f"s3://{BUCKET}/flaky-runs", "--json", "s.json", "--quiet"]
        assert main(args) == 0
    finally:
        proxy.shutdown()
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["artifacts"].startswith(f"s3://{BUCKET}/flaky-runs/")
    assert proxy.failed >= proxy.first + 1  # the injected faults happened, and were survived
    print(f"\nflaky S3: {proxy.failed} of {proxy.count} requests failed with 503, run completed")


def _run_cmd(i: int) -> list[str]:
    return [
        sys.executable, "-m", "dcflow.cli", "run", "toy-init-refine",
        "--set", f"dataset.limit={150 + 10 * i}", "--seed", str(i), "--tag", f"load={i}",
        "--artifacts", f"s3://{BUCKET}/load/{i}", "--json", f"s{i}.json", "--quiet",
    ]  # fmt: skip


def test_eight_pipelines_at_once(services: dict[str, Any], tmp_path: Path) -> None:
    import boto3
    import mlflow

    env = {
        **os.environ, "AWS_ENDPOINT_URL": services["s3"], "MLFLOW_TRACKING_URI": services["mlflow"],
        "PYTHONPATH": str(PLUGINS), "DCFLOW_PLUGINS": "toy_layout",
    }  # fmt: skip
    procs = [
        subprocess.Popen(_run_cmd(i), cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
        for i in range(8)
    ]
    errors = [p.communicate(timeout=900)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, errors
    s3 = boto3.client("s3", endpoint_url=services["s3"])
    client = mlflow.tracking.MlflowClient(services["mlflow"])
    for i in range(8):
        summary = json.loads((tmp_path / f"s{i}.json").read_text())
        n = 150 + 10 * i
        assert summary["n_samples"] == n
        run = client.get_run(summary["mlflow"]["run_id"])
        assert run.data.tags["load"] == str(i) and run.data.tags["n_samples"] == str(n)
        assert run.data.metrics["acc"] == pytest.approx(summary["metrics"]["acc"])
        prefix = summary["artifacts"].removeprefix(f"s3://{BUCKET}/")
        assert prefix.startswith(f"load/{i}/")
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"]]
        (pred_key,) = [k for k in keys if k.endswith("predictions.csv")]
        text = s3.get_object(Bucket=BUCKET, Key=pred_key)["Body"].read().decode()
        assert len(list(csv.DictReader(io.StringIO(text)))) == n  # its own predictions
