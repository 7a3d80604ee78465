"""MLflow failing at the end of a run loses nothing: the run is kept and ``dcflow sync`` logs it."""

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from dcflow.cli import main

PLUGINS = Path(__file__).parent / "pipelines" / "plugins"


class _Dying(http.server.BaseHTTPRequestHandler):
    """Answers the health check, then fails every API call (a server dying mid-run)."""

    def _reply(self) -> None:
        ok = self.path.rstrip("/").endswith("/health")
        self.send_response(200 if ok else 503)
        self.end_headers()
        self.wfile.write(b"OK" if ok else b"down")

    do_GET = do_POST = _reply  # noqa: N815

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def dying_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Dying)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_metrics_survive_a_dying_server_and_sync_later(
    dying_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    import mlflow

    import dcflow.methods as methods

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(PLUGINS))
    monkeypatch.setenv("DCFLOW_PLUGINS", "toy_layout")
    methods._load_plugins()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", dying_server)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    args = ["run", "toy-init-refine", "--set", "dataset.limit=150", "--json", "s.json", "--quiet"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "MLflow logging failed" in err and "dcflow sync" in err
    summary = json.loads((tmp_path / "s.json").read_text())
    pending = Path(summary["mlflow"]["pending"])
    record = json.loads(pending.read_text())
    assert record["metrics"]["acc"] == summary["metrics"]["acc"]
    assert record["metrics"]["wall_seconds"] == summary["wall_seconds"]
    assert all(Path(f).is_file() for f in record["files"])  # the artifacts stay on disk

    # still down: sync keeps the record and says so
    assert main(["sync"]) == 5 and pending.is_file()
    # back (here: another store): sync logs everything, curves and artifacts included
    uri = f"sqlite:///{tmp_path}/back.db"
    assert main(["sync", "--tracking-uri", uri]) == 0 and not pending.exists()
    client = mlflow.tracking.MlflowClient(uri)
    (run,) = client.search_runs(
        [client.get_experiment_by_name("dcflow").experiment_id],
        filter_string="tags.`dcflow.kind` = 'pipeline'",
    )
    assert run.data.metrics["acc"] == pytest.approx(summary["metrics"]["acc"])
    assert run.data.metrics["wall_seconds"] == pytest.approx(summary["wall_seconds"])
    names = {f.path for f in client.list_artifacts(run.info.run_id)}
    assert {"predictions.csv", "config.json"} <= names
