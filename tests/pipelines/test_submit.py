"""``compile.py --submit`` against a stub KFP API on 127.0.0.1: what it posts, how it fails."""

import json
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]

from dcflow_pipelines import compile as compile_cli  # noqa: E402

pytestmark = pytest.mark.timeout(180)

TOKEN = "stub-token-d7f3a9"  # noqa: S105 - a test credential that must never be printed


class StubKFP(ThreadingHTTPServer):
    """Records requests; answers like the KFP v2beta1 API, with 403 on paths under ``refuse``."""

    def __init__(self, refuse: str = "") -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.refuse = refuse
        self.requests: list[dict[str, Any]] = []
        self.pipelines: dict[str, str] = {}  # name -> id, filled by uploads

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: StubKFP

    def _answer(self, body: dict[str, Any]) -> None:
        refused = bool(self.server.refuse) and self.path.startswith(self.server.refuse)
        data = json.dumps({"error": "denied"} if refused else body).encode()
        self.send_response(403 if refused else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _record(self, body: Any = None) -> None:
        self.server.requests.append(
            {
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body,
            }
        )

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._record()
        if self.path.startswith("/apis/v2beta1/pipelines?"):
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            name = json.loads(query["filter"][0])["predicates"][0]["stringValue"]
            found = self.server.pipelines.get(name)
            self._answer({"pipelines": [{"pipeline_id": found}]} if found else {})
        else:
            self._answer({})  # healthz; experiment lookup by name: none yet

    def do_POST(self) -> None:  # noqa: N802
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path.startswith("/apis/v2beta1/pipelines/upload"):
            self._record(raw)
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            if "name" in query:
                self.server.pipelines[query["name"][0]] = f"pid-{len(self.server.pipelines)}"
            self._answer({"pipeline_id": self.server.pipelines.get(query.get("name", [""])[0])})
            return
        body = json.loads(raw or b"{}")
        self._record(body)
        if self.path.startswith("/apis/v2beta1/experiments"):
            self._answer({"experiment_id": "exp-1", "display_name": body["display_name"]})
        else:
            self._answer({"run_id": "run-1", "experiment_id": body.get("experiment_id")})

    def log_message(self, *args: Any) -> None:
        pass


def _serve(refuse: str = "") -> Iterator[StubKFP]:
    server = StubKFP(refuse)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def stub() -> Iterator[StubKFP]:
    yield from _serve()


def _argv(out: Path, host: str, *extra: str) -> list[str]:
    return ["--method", "aspc-da", "--out", str(out), "--gpus", "0", "--submit", "--host", host,
            "--existing-token", TOKEN, *extra]  # fmt: skip


def test_submit_posts_the_compiled_spec(
    stub: StubKFP, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    params = ["--param", "weights_store=s3://dcflow/weights", "--param", "experiment=x"]
    argv = _argv(tmp_path, stub.url, "--experiment", "digits-e2e", "--run-name", "r-1", *params)
    assert compile_cli.main(argv) == 0
    out = capsys.readouterr()
    assert "submitted aspc-da" in out.out and "run run-1 (experiment exp-1)" in out.out
    assert TOKEN not in out.out + out.err
    posts = {r["path"].split("?")[0]: r for r in stub.requests if r["method"] == "POST"}
    assert posts["/apis/v2beta1/experiments"]["body"]["display_name"] == "digits-e2e"
    run = posts["/apis/v2beta1/runs"]["body"]
    compiled = list(yaml.safe_load_all((tmp_path / "aspc-da.yaml").read_text()))
    assert run["pipeline_spec"]["pipeline_spec"] == compiled[0]
    assert run["pipeline_spec"]["platform_spec"] == compiled[1]
    assert run["display_name"] == "r-1" and run["experiment_id"] == "exp-1"
    assert run["runtime_config"]["parameters"] == {
        "weights_store": "s3://dcflow/weights",
        "experiment": "x",
    }
    assert all(r["headers"].get("authorization") == f"Bearer {TOKEN}" for r in stub.requests)


@pytest.mark.parametrize("refuse", ["/apis/", "/apis/v2beta1/runs"])
def test_refusal_is_one_line(
    refuse: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Refused at the health check (e.g. bad token) or only when the run is posted."""
    for server in _serve(refuse):
        assert compile_cli.main(_argv(tmp_path, server.url)) == 5
        err = capsys.readouterr().err.strip()
        assert (
            err == f"compile: error: KFP host {server.url} refused the request: HTTP 403 Forbidden"
        )
        paths = [r["path"] for r in server.requests]
        assert paths[0] == "/apis/v2beta1/healthz"
        assert ("/apis/v2beta1/runs" in paths) == (refuse == "/apis/v2beta1/runs")


def test_unreachable_host_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    assert compile_cli.main(_argv(tmp_path, f"http://127.0.0.1:{port}")) == 5
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"compile: error: KFP host http://127.0.0.1:{port}")
    assert "is unreachable" in err[0] and TOKEN not in err[0]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "--submit needs --host URL and one --method"),
        (["--host", "http://127.0.0.1:1", "--param", "novalue"], "--param wants K=V"),
    ],
)
def test_submit_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exc:
        compile_cli.main(["--method", "aspc-da", "--out", str(tmp_path), "--submit", *extra])
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_upload_creates_then_versions(stub: StubKFP, tmp_path: Path) -> None:
    argv = ["--method", "aspc-da", "--out", str(tmp_path), "--upload", "--host", stub.url]
    assert compile_cli.main(argv) == 0
    assert compile_cli.main(argv) == 0
    uploads = [r for r in stub.requests if r["path"].startswith("/apis/v2beta1/pipelines/upload")]
    assert [r["path"].split("?")[0] for r in uploads] == [
        "/apis/v2beta1/pipelines/upload",
        "/apis/v2beta1/pipelines/upload_version",
    ]
    assert "name=dcflow-aspc-da" in uploads[0]["path"]
    assert "pipelineid=pid-0" in uploads[1]["path"].replace("_", "").lower()
    compiled = (tmp_path / "aspc-da.yaml").read_bytes()
    assert all(compiled in r["body"] for r in uploads)  # the package itself, byte for byte


def _all_tasks(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every task of a PipelineSpec: the root DAG's and those nested in sub-DAGs (dsl.If/Else)."""
    tasks = {f"root/{k}": t for k, t in spec["root"]["dag"]["tasks"].items()}
    for comp_name, comp in spec["components"].items():
        tasks.update(
            {f"{comp_name}/{k}": t for k, t in comp.get("dag", {}).get("tasks", {}).items()}
        )
    return tasks


def _cached(spec: dict[str, Any]) -> set[str]:
    return {
        t["taskInfo"]["name"]
        for t in _all_tasks(spec).values()
        if t.get("cachingOptions", {}).get("enableCache")
    }


def test_no_cache_turns_caching_off_for_the_run(stub: StubKFP, tmp_path: Path) -> None:
    """The posted spec caches no task, nested ones (pretrain inside dsl.If) included."""
    assert compile_cli.main(_argv(tmp_path / "cached", stub.url)) == 0
    assert compile_cli.main(_argv(tmp_path / "fresh", stub.url, "--no-cache")) == 0
    cached, fresh = [
        r["body"]["pipeline_spec"]["pipeline_spec"]
        for r in stub.requests
        if r["method"] == "POST" and r["path"].startswith("/apis/v2beta1/runs")
    ]
    assert _cached(cached) == {"download-weights", "pretrain"}  # the default
    assert _cached(fresh) == set()
    assert len(_all_tasks(fresh)) == len(_all_tasks(cached))


def test_no_cache_is_in_the_uploaded_package(stub: StubKFP, tmp_path: Path) -> None:
    argv = ["--method", "aspc-da", "--out", str(tmp_path), "--upload", "--host", stub.url]
    assert compile_cli.main([*argv, "--no-cache"]) == 0
    (upload,) = [r for r in stub.requests if r["path"].startswith("/apis/v2beta1/pipelines/upl")]
    spec = next(yaml.safe_load_all((tmp_path / "aspc-da.yaml").read_text()))
    assert (tmp_path / "aspc-da.yaml").read_bytes() in upload["body"]
    assert _cached(spec) == set() and len(_all_tasks(spec)) > 5
