"""No task's input grows with the number of epochs (KFP passes it in one argv string, <= 128 KiB).

Per-epoch curves used to travel in the ``reports`` string parameter, so a paper-length schedule
(HaDis: 1,000 epochs) failed at evaluate with ``[Errno 7] Argument list too long``. Curves now stay
in the stages' artifacts. This chains every component of a pipeline (their ``python_func``, as
kfp.local would call them) at two schedule lengths and compares the size of every parameter each
task receives; the MLflow run still gets every curve.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import dcflow_components
import pytest
from mlflow.tracking import MlflowClient

from dcflow.config import build_run_config
from dcflow.methods.registry import get_method

pytestmark = pytest.mark.usefixtures("isolated_env")


def _call(sizes: dict[str, int], name: str, **kwargs: Any) -> Any:
    params = [v for v in kwargs.values() if isinstance(v, str)]
    sizes[name] = sum(len(p.encode()) for p in params)
    return dcflow_components.COMPONENTS[name].python_func(**kwargs)


def _chain(root: Path, epochs: int) -> tuple[dict[str, int], dict[str, Any]]:
    cfg = build_run_config(
        "aspc-da",
        get_method("aspc-da").Config,
        {"name": "fake"},
        overrides=[
            f"pretrain.epochs={epochs}",
            "pretrain.hidden_dims=[16,16]",
            f"refine.max_iter={epochs}",
            "refine.tol=0",  # no early stop: every epoch adds to the curves
            "kmeans.n_init=1",
        ],
        use_preset=False,
    ).to_json()

    def art(name: str) -> SimpleNamespace:
        (root / name).mkdir(parents=True, exist_ok=True)
        return SimpleNamespace(path=str(root / name))

    s: dict[str, int] = {}
    store = str(root / "store")
    _, _, _, rep = _call(s, "download-weights", config=cfg, weights_store=store)
    uri, sha, rep = _call(s, "pretrain", config=cfg, weights_store=store, reports=rep, out=art("p"))
    (rep,) = _call(
        s, "cluster-init", config=cfg, weights_uri=uri, weights_sha256=sha, reports=rep,
        out=art("i"),
    )  # fmt: skip
    (rep,) = _call(
        s, "confident-sample-selection", config=cfg, reports=rep, init=art("i"), out=art("s")
    )
    (rep,) = _call(
        s, "refine", config=cfg, weights_uri=uri, weights_sha256=sha, reports=rep,
        init=art("i"), selection=art("s"), out=art("f"),
    )  # fmt: skip
    (summary,) = _call(
        s, "evaluate", config=cfg, reports=rep, init=art("i"), final=art("f"),
        tracking_uri=f"sqlite:///{root}/mlflow.db", experiment="e", job_id="j", out=art("e"),
        metrics=SimpleNamespace(log_metric=lambda *_: None),
        confusion=SimpleNamespace(path=str(root / "c.md")), weights_uri=uri, selection=art("s"),
    )  # fmt: skip
    return s, json.loads(summary)


def test_no_task_input_grows_with_epochs(tmp_path: Path) -> None:
    short, _ = _chain(tmp_path / "short", 2)
    long, summary = _chain(tmp_path / "long", 40)
    assert set(short) == set(long) and len(long) == 6
    for task, size in long.items():
        # metric values and timings print with varying digits; 38 more epochs of the 8 curves
        # (pretrain loss, refine's seven) would add kilobytes
        assert abs(size - short[task]) < 300, (task, short[task], size)

    # ...and the curves still reach MLflow, from the artifacts and from beside the weights
    client = MlflowClient(summary["mlflow"]["tracking_uri"])
    parent = summary["mlflow"]["run_id"]
    exp = client.get_run(parent).info.experiment_id
    stages = client.search_runs([exp], f"tags.mlflow.parentRunId = '{parent}'")
    steps = {
        r.data.tags["stage"]: {
            k: len(client.get_metric_history(r.info.run_id, k)) for k in r.data.metrics
        }
        for r in stages
    }
    assert steps["pretrain"]["loss"] == 40
    assert steps["refine"]["loss"] == 40
