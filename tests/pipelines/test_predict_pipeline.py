"""The ``dcflow-predict`` pipeline: compiled with the fit pipelines' cluster settings, and run with
kfp.local on a tiny finished run, whose fit data it assigns as the run did."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from dcflow_pipelines import compile as compile_cli
from dcflow_pipelines.cluster import ClusterSettings
from dcflow_pipelines.predict_pipeline import build_predict

from dcflow.errors import ConfigError
from tests.stage_chain import fit_in_process

IMAGE = "reg.example/dcflow:2.0"
PARAMS = {"run", "dataset", "dataset_options", "tracking_uri"}


def _compile(tmp_path: Path, *extra: str) -> list[dict[str, Any]]:
    argv = ["--predict", "--out", str(tmp_path), "--image", IMAGE, *extra]
    assert compile_cli.main(argv) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["predict.yaml"]
    return list(yaml.safe_load_all((tmp_path / "predict.yaml").read_text()))


def _executor(docs: list[dict[str, Any]]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(name, container, kubernetes config) of the one executor."""
    ((name, executor),) = docs[0]["deploymentSpec"]["executors"].items()
    k8s = docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"][name]
    return name, executor["container"], k8s


def test_predict_pipeline_compiles_to_a_valid_spec_with_the_cluster_settings(
    tmp_path: Path,
) -> None:
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    docs = _compile(
        tmp_path,
        *("--image-pull-secret", "regcred", "--pipeline-root", "s3://bucket/runs"),
        *("--mlflow-secret", "mlflow-auth", "--cpu", "500m", "--memory", "1Gi"),
    )
    assert len(docs) == 2  # PipelineSpec + kfp-kubernetes PlatformSpec
    json_format.ParseDict(docs[0], pipeline_spec_pb2.PipelineSpec())
    compile_cli.validate(docs)
    spec = docs[0]
    assert spec["pipelineInfo"]["name"] == "dcflow-predict"
    assert spec["defaultPipelineRoot"] == "s3://bucket/runs"
    inputs = spec["root"]["inputDefinitions"]["parameters"]
    assert set(inputs) == PARAMS
    assert {k for k, v in inputs.items() if not v.get("isOptional")} == {"run", "dataset"}
    assert inputs["dataset_options"]["defaultValue"] == "{}"
    outputs = spec["root"]["outputDefinitions"]
    assert outputs["artifacts"]["predictions"]["artifactType"]["schemaTitle"] == "system.Dataset"
    assert set(outputs["parameters"]) == {"summary"}
    ((task_name, task),) = spec["root"]["dag"]["tasks"].items()
    assert task["taskInfo"]["name"] == "predict"
    assert set(task["inputs"]["parameters"]) == PARAMS
    assert not task["cachingOptions"].get("enableCache")  # the run or the data may change
    assert task["retryPolicy"]["maxRetryCount"] == 2
    name, container, k8s = _executor(docs)
    assert spec["components"][task["componentRef"]["name"]]["executorLabel"] == name
    assert container["image"] == IMAGE
    assert container["args"][container["args"].index("--function_to_execute") + 1] == "predict_run"
    assert "def predict_run(" in container["command"][-1]
    assert "accelerator" not in container["resources"] and "env" not in container
    assert container["resources"]["resourceCpuRequest"] == "500m"
    assert container["resources"]["resourceMemoryRequest"] == "1Gi"
    assert [s["secretName"] for s in k8s["imagePullSecret"]] == ["regcred"]
    assert {s["secretName"] for s in k8s["secretAsEnv"]} == {"dcflow-s3", "mlflow-auth"}
    assert [c["configMapName"] for c in k8s["configMapAsEnv"]] == ["dcflow-config"]
    assert task_name == name.removeprefix("exec-")


def test_predict_gpu_makes_it_a_training_stage_on_the_cuda_image(tmp_path: Path) -> None:
    docs = _compile(tmp_path, "--predict-gpu", "--gpus", "2", "--train-memory", "8Gi")
    compile_cli.validate(docs)
    _, container, _ = _executor(docs)
    assert container["image"] == IMAGE + "-cuda"
    assert container["resources"]["accelerator"]["resourceType"] == "nvidia.com/gpu"
    assert container["resources"]["accelerator"]["resourceCount"] == "2"
    assert container["resources"]["resourceMemoryRequest"] == "8Gi"
    assert {v["name"]: v["value"] for v in container["env"]} == {"DCFLOW_REQUIRE_CUDA": "1"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--predict", "--compare", "aspc-da"], "--predict and --compare"),
        (["--predict-gpu"], "--predict-gpu applies to --predict only"),
        (["--predict", "--submit"], "--submit needs --host"),
    ],
)
def test_usage_errors(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        compile_cli.main([*argv, "--out", str(tmp_path)])
    assert exc.value.code == 2 and message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A tiny ASPC-DA run (smoke settings) fitted on the train split of ``fake``: ~15 s."""
    root = tmp_path_factory.mktemp("finished")
    mp = pytest.MonkeyPatch()
    mp.setenv("DCFLOW_CONFIG_DIR", str(tmp_path_factory.mktemp("no-presets")))
    for var in ("MLFLOW_TRACKING_URI", "AWS_ENDPOINT_URL", "AWS_PROFILE"):
        mp.delenv(var, raising=False)
    dataset = {"name": "fake", "split": "train"}
    tracking_uri = f"sqlite:///{root}/mlflow.db"
    try:
        run = fit_in_process("aspc-da", dataset, root / "run", str(root / "store"), tracking_uri)
    finally:
        mp.undo()
    summary, d = run.summary, run.dirs
    with open(Path(d["eval"]) / "predictions.csv") as fh:
        fitted = {int(r["index"]): int(r["cluster"]) for r in csv.DictReader(fh)}
    return {"dir": root / "run", "summary": summary, "fitted": fitted, "tracking": tracking_uri}


def _agreement(rows: list[dict[str, str]], fitted: dict[int, int]) -> float:
    assert len(rows) == len(fitted) == 240  # one row per image of fake's train split
    assert {int(r["index"]) for r in rows} == set(fitted)
    return sum(int(r["cluster"]) == fitted[int(r["index"])] for r in rows) / len(rows)


@pytest.mark.filterwarnings("ignore:.*non-Python base image:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:.*no effect in the current local runner:UserWarning")
def test_predict_pipeline_runs_locally_and_reproduces_the_fit(
    finished: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kfp import local

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "systmp").mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path / "systmp"))  # kfp's `mktemp -d` per task
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(tmp_path / "root"),
        raise_on_error=True,
    )
    task = build_predict(ClusterSettings.local())(
        run=str(finished["dir"]), dataset="fake", dataset_options='{"split": "train"}'
    )
    path = Path(task.outputs["predictions"].path)
    assert path.is_relative_to(tmp_path / "root")
    with open(path) as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0])[:3] == ["index", "label", "cluster"]
    assert _agreement(rows, finished["fitted"]) >= 0.99
    summary = json.loads(task.outputs["summary"])
    assert summary["n_samples"] == 240 and sum(summary["cluster_sizes"]) == 240
    assert len(summary["cluster_sizes"]) == 3
    assert summary["dataset"] == {"split": "train", "name": "fake"}


def _component(tmp_path: Path, **kwargs: str) -> tuple[int, str]:
    from dcflow_components.predict import predict_run

    out = SimpleNamespace(path=str(tmp_path / "predictions.csv"))
    return predict_run.python_func(predictions=out, **{"tracking_uri": "", **kwargs})


def test_the_component_takes_an_mlflow_run_id_and_the_tracking_uri(
    finished: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    run_id = finished["summary"]["mlflow"]["run_id"]
    n, summary = _component(
        tmp_path, run=run_id, dataset="fake", dataset_options='{"split": "train"}',
        tracking_uri=finished["tracking"],
    )  # fmt: skip
    assert n == 240 and json.loads(summary)["run"] == run_id
    with open(tmp_path / "predictions.csv") as fh:
        assert _agreement(list(csv.DictReader(fh)), finished["fitted"]) >= 0.99


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("[1, 2]", "dataset_options is not a JSON object"),
        ("{oops", "dataset_options is not a JSON object"),
        ('{"bogus": 1}', "invalid dataset config: bogus: unknown key"),
    ],
)
def test_bad_dataset_options_fail_in_one_line_before_any_download(
    options: str, message: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=message):
        _component(tmp_path, run="s3://nowhere/run", dataset="fake", dataset_options=options)
    assert not (tmp_path / "predictions.csv").exists()
