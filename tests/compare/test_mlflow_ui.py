"""The MLflow UI lists a comparison's runs with their ACC (real server, headless Chromium).

Skips with its reason where Chromium or Playwright is absent; ``.ci/run`` installs both. Set
``DCFLOW_SCREENSHOT_DIR`` to keep the screenshots (docs/ holds the committed ones).
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from dcflow import tracking

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)"
    ),
]
EXPERIMENT = "ui-compare"
COMPARISON = "uitest"
RUNS = {("aspc-da", 0): 0.812, ("aspc-da", 1): 0.797, ("self-cc", 0): 0.854, ("self-cc", 1): 0.861}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _log_runs(uri: str) -> dict[tuple[str, int], str]:
    names = {}
    for (method, seed), acc in RUNS.items():
        now = time.time()
        report = {
            "stage": "evaluate",
            "seconds": 1.0,
            "skipped": False,
            "metrics": {},
            "started": now - 1,
            "ended": now,
        }
        name = f"{method}-digits-s{seed}"
        tracking.log_pipeline_run(
            uri,
            EXPERIMENT,
            name,
            {"method": method, "dataset": "digits", "seed": str(seed), "comparison": COMPARISON},
            {"seed": seed},
            {"acc": acc, "nmi": acc - 0.05, "ari": acc - 0.1},
            [report],
            [],
        )
        names[(method, seed)] = name
    return names


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict]]:
    root = tmp_path_factory.mktemp("mlflow-ui")
    port = _free_port()
    db = f"sqlite:///{root}/mlflow.db"
    names = _log_runs(db)
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        db,
        "--default-artifact-root",
        str(root / "art"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(base + "/health", timeout=2):
                    break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    pytest.fail("mlflow server did not start within 120 s")
                time.sleep(1)
        yield base, names
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _experiment_id(base: str) -> str:
    q = urllib.parse.urlencode({"experiment_name": EXPERIMENT})
    url = f"{base}/api/2.0/mlflow/experiments/get-by-name?{q}"
    with urllib.request.urlopen(url) as resp:
        return str(json.load(resp)["experiment"]["experiment_id"])


def test_runs_page_lists_every_method_with_its_acc(server: tuple[str, dict]) -> None:
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    base, names = server
    exp = _experiment_id(base)
    search = f"tags.comparison = '{COMPARISON}' and tags.`dcflow.kind` = 'pipeline'"
    url = f"{base}/#/experiments/{exp}/runs?" + urllib.parse.urlencode({"searchFilter": search})
    shots = Path(os.environ.get("DCFLOW_SCREENSHOT_DIR", "") or "/nonexistent")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1600, "height": 900})
        page.goto(url, timeout=90_000)
        # exact: newer MLflow UIs add a "Show more columns (N total)" button beside "Columns"
        page.get_by_role("button", name="Columns", exact=True).click(timeout=90_000)
        page.get_by_text("Reset to defaults").wait_for(timeout=30_000)
        page.wait_for_timeout(500)
        page.keyboard.type("acc")
        page.get_by_text("Metrics (1)").click(timeout=30_000)  # the one metric matching "acc"
        page.keyboard.press("Escape")
        page.get_by_text(f"{len(RUNS)} matching runs").wait_for(timeout=30_000)
        rows = [r for r in page.locator("[role=row]").all_inner_texts() if r.strip()]
        if shots.is_dir():
            page.screenshot(path=str(shots / "mlflow-runs.png"))
        browser.close()
    # ag-grid renders the pinned name column and the value columns as two row lists, same order
    name_rows = [r for r in rows if any(n in r for n in names.values())]
    value_rows = rows[-len(name_rows) :]
    assert len(name_rows) == len(RUNS)
    shown = {}
    for name_row, value_row in zip(name_rows, value_rows, strict=True):
        name = next(n for n in names.values() if n in name_row)
        shown[name] = float(value_row.split()[-1])
    assert shown == {names[k]: pytest.approx(v) for k, v in RUNS.items()}
