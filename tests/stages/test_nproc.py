"""``--nproc``: pretrain trains in N processes under torchrun and publishes rank 0's weights.

Issue 22, item 3 (local half): the same training function as one process, on CPU with gloo.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from dcflow import artifacts as art
from dcflow.config import build_run_config
from dcflow.errors import StageError
from dcflow.methods.cc import CC
from dcflow.methods.registry import get_method
from dcflow.models.state import load_into, load_state
from dcflow.stages import launch
from dcflow.stages.common import load_run, weights_key
from dcflow.stages.pretrain import pretrain

SMOKE = [*CC.smoke, "dataset.limit=200", "threads=1", "pretrain.epochs=3"]


def _config(nproc: int, method: str = "cc", extra: tuple[str, ...] = ()) -> str:
    smoke = SMOKE if method == "cc" else [*get_method(method).smoke, "dataset.limit=200"]
    cls = get_method(method)
    over = [*smoke, *extra, "threads=1", f"nproc={nproc}"]
    return build_run_config(method, cls.Config, {"name": "digits"}, None, over).to_json()


@pytest.mark.parametrize("method", ["scan", "hadis"])
def test_other_methods_pretrain_in_two_processes(
    method: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SimCLR (scan, ruc) and the ProPos warm-up (propos, hadis) run under torchrun too."""
    monkeypatch.chdir(tmp_path)
    out = pretrain(_config(2, method), str(tmp_path / "store"), str(tmp_path / "pretrain"))
    metrics = out["report"]["metrics"]
    assert all(v == v for v in metrics.values()) and metrics  # finite, not NaN
    assert load_state(tmp_path / "pretrain" / art.WEIGHTS)


def test_propos_refine_in_two_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """HaDis's EM epochs under torchrun: sharded E-step embeddings, rank 0's refine artifact."""
    from dcflow.handoff import RefineOut
    from dcflow.stages.cluster_init import cluster_init
    from dcflow.stages.refine import refine

    monkeypatch.chdir(tmp_path)
    config_json = _config(2, "hadis")
    out = pretrain(config_json, str(tmp_path / "store"), str(tmp_path / "pretrain"))
    weights = (out["weights_uri"], out["weights_sha256"])
    cluster_init(config_json, str(tmp_path / "init"), *weights)
    report = refine(config_json, str(tmp_path / "init"), str(tmp_path / "refine"), "", *weights)
    result = RefineOut.load(tmp_path / "refine")
    assert result.labels.shape == (200,) and result.proba is not None
    assert result.proba.shape == (200, 10) and result.model is not None
    assert result.history and all(v == v for v in report["metrics"].values())
    assert "changed_last" in report["metrics"]
    curves = json.loads((tmp_path / "refine" / "report.json").read_text())["curves"]
    assert curves["loss"] and curves["changed"]


def _two_process_stages(
    method: str, tmp_path: Path, extra: tuple[str, ...] = ()
) -> tuple[str, tuple[str, str]]:
    """Pretrain and cluster-init of ``method`` with ``nproc=2``; the config and the weights."""
    from dcflow.stages.cluster_init import cluster_init

    config_json = _config(2, method, extra)
    out = pretrain(config_json, str(tmp_path / "store"), str(tmp_path / "pretrain"))
    weights = (out["weights_uri"], out["weights_sha256"])
    cluster_init(config_json, str(tmp_path / "init"), *weights)
    return config_json, weights


def test_scan_cluster_init_and_refine_in_two_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SCAN's training (sharded batches, global entropy, gathered validation) and the
    self-labelling refine under torchrun: rank 0's artifacts, with every process's graph."""
    from dcflow.handoff import ClusterInitOut, RefineOut
    from dcflow.stages.refine import refine

    monkeypatch.chdir(tmp_path)
    config_json, weights = _two_process_stages("scan", tmp_path)
    init = ClusterInitOut.load(tmp_path / "init")
    assert init.neighbors is not None and init.neighbors.shape[0] == 200
    assert (init.neighbors[:, 0] == range(200)).all()  # self first
    assert init.model is not None and init.metrics["scan_best_epoch"] in (1.0, 2.0)
    curves = json.loads((tmp_path / "init" / "report.json").read_text())["curves"]
    assert [step for step, _ in curves["scan_val_loss"]] == [1, 2]
    report = refine(config_json, str(tmp_path / "init"), str(tmp_path / "refine"), "", *weights)
    result = RefineOut.load(tmp_path / "refine")
    assert result.labels.shape == (200,) and result.proba is not None
    assert "confident_fraction" in report["metrics"]


def test_ruc_in_two_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """RUC's cluster-init (SCAN then self-labelling) and co-training refine under torchrun."""
    from dcflow.handoff import ClusterInitOut, RefineOut
    from dcflow.stages.confident_sample_selection import confident_sample_selection
    from dcflow.stages.refine import refine

    monkeypatch.chdir(tmp_path)
    config_json, weights = _two_process_stages("ruc", tmp_path)
    init = ClusterInitOut.load(tmp_path / "init")
    assert init.labels.shape == (200,) and init.proba is not None
    assert "selflabel_fallback" in init.metrics
    confident_sample_selection(config_json, str(tmp_path / "init"), str(tmp_path / "sel"))
    args = (str(tmp_path / "init"), str(tmp_path / "refine"), str(tmp_path / "sel"))
    report = refine(config_json, *args, *weights)
    result = RefineOut.load(tmp_path / "refine")
    assert result.labels.shape == (200,) and result.model is not None
    assert result.selected is not None and result.history
    assert all(v == v for v in report["metrics"].values())
    assert (
        report["metrics"]["clean_fraction"]
        >= json.loads((tmp_path / "sel" / "report.json").read_text())["metrics"]["clean_fraction"]
    )  # co-refurbishing never shrinks the clean set


def test_uldc_refine_in_two_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ULDC's fine-tuning on the gathered global batch: rank 0's refined network and labels."""
    from dcflow.handoff import RefineOut
    from dcflow.stages.refine import refine

    monkeypatch.chdir(tmp_path)
    config_json, weights = _two_process_stages("uldc", tmp_path)
    report = refine(config_json, str(tmp_path / "init"), str(tmp_path / "refine"), "", *weights)
    result = RefineOut.load(tmp_path / "refine")
    assert result.labels.shape == (200,) and result.model is not None
    assert result.history and result.history[-1]["epoch"] == 1
    assert 0.0 <= report["metrics"]["final_changed_vs_init"] <= 1.0


def test_pretrain_in_two_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config_json = _config(2)
    out = pretrain(config_json, str(tmp_path / "store"), str(tmp_path / "pretrain"))
    report = out["report"]
    assert report["metrics"]["samples_per_second"] > 0
    assert report["metrics"]["loss_last"] < report["metrics"]["loss_first"]
    curves = json.loads((tmp_path / "pretrain" / "report.json").read_text())["curves"]
    assert [step for step, _ in curves["loss"]] == [1, 2, 3]
    # the published weights load into the one-process network (plain batch norm, same keys)
    cfg, data = load_run(config_json)
    from dcflow.methods.base import StageContext
    from dcflow.stages.common import without_labels

    method = get_method("cc")(cfg)
    ctx = StageContext(data=without_labels(data), device=torch.device("cpu"), seed=0)
    state = load_state(tmp_path / "pretrain" / art.WEIGHTS)
    load_into(method.network(ctx), tmp_path / "pretrain" / art.WEIGHTS, "CC network")
    assert any(k.endswith("running_var") for k in state)


def test_nproc_is_part_of_the_weights_key() -> None:
    keys = []
    for n in (1, 2):
        cfg, data = load_run(_config(n))
        m = get_method("cc")(cfg)
        keys.append(weights_key(m.weights_name(), data, m.weights_key_config(10), 0))
    assert keys[0] != keys[1]


def test_a_failed_worker_fails_the_stage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(
        stage: str, config_path: Path, out: Path, nproc: int, extra: tuple[str, ...] = ()
    ) -> list[str]:
        cmd = launch.__dict__["_original_worker_command"](stage, config_path, out, nproc, extra)
        return [*cmd[:-3], "no-such-stage", *cmd[-2:]]

    monkeypatch.setitem(launch.__dict__, "_original_worker_command", launch.worker_command)
    monkeypatch.setattr(launch, "worker_command", broken)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StageError, match="failed \\(exit code .*no data-parallel worker"):
        pretrain(_config(2), str(tmp_path / "store"), str(tmp_path / "pretrain"))
    assert not list((tmp_path / "store").rglob("*.pt"))


def test_worker_error_picks_the_cause() -> None:
    crash = "noise\nTraceback (most recent call last):\n  x\nRuntimeError: boom\n"
    crash += "torch.distributed.elastic.multiprocessing.errors.ChildFailedError: \n"
    assert launch.worker_error(crash) == "RuntimeError: boom"
    assert launch.worker_error("x\ndcflow: error: bad data\n") == "bad data"
    assert "stage log" in launch.worker_error("killed\n")
