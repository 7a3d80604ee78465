"""Per-stage cluster settings land in the compiled YAML (PipelineSpec + kfp-kubernetes part)."""

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]

from dcflow_pipelines import compile as compile_cli  # noqa: E402
from dcflow_pipelines.cluster import (  # noqa: E402
    CONFIG_MAP_KEYS,
    SECRET_KEYS,
    ClusterSettings,
    Toleration,
)

STAGE_EXECUTORS = {
    "download-weights": "exec-download-weights",
    "pretrain": "exec-pretrain",
    "verify-weights": "exec-verify-weights",
    "cluster-init": "exec-cluster-init",
    "confident-sample-selection": "exec-confident-sample-selection",
    "refine": "exec-refine",
    "evaluate": "exec-evaluate",
}


def _tasks(spec: dict) -> dict[str, dict]:
    """Every stage task of the pipeline, in the DAG and inside the dsl.If/Else groups."""
    found = dict(spec["root"]["dag"]["tasks"])
    for comp in spec["components"].values():
        found.update(comp.get("dag", {}).get("tasks", {}))
    return {
        t["taskInfo"]["name"]: t for t in found.values() if t["taskInfo"]["name"] in STAGE_EXECUTORS
    }


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:
    out = tmp_path_factory.mktemp("compiled")
    argv = [
        "--method", "aspc-da", "--out", str(out), "--image", "reg.example/dcflow:1",
        "--cpu", "500m", "--memory", "1Gi", "--train-cpu", "3", "--train-memory", "6Gi",
        "--node-selector", "pool=gpu", "--toleration", "nvidia.com/gpu:NoSchedule",
        "--toleration", "dedicated=ml:NoExecute", "--s3-secret", "my-s3",
        "--config-map", "my-cfg", "--retries", "3", "--pipeline-root", "s3://runs/kfp",
    ]  # fmt: skip
    assert compile_cli.main(argv) == 0
    docs = list(yaml.safe_load_all((out / "aspc-da.yaml").read_text()))
    compile_cli.validate(docs)
    return docs[0], docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


def test_requests_gpu_and_display_names(compiled: tuple[dict, dict]) -> None:
    spec, _ = compiled
    executors = spec["deploymentSpec"]["executors"]
    training = {"pretrain", "refine"}  # aspc-da's training_stages
    for stage, name in STAGE_EXECUTORS.items():
        res = executors[name]["container"]["resources"]
        cpu, memory = ("3", "6Gi") if stage in training else ("500m", "1Gi")
        assert res["resourceCpuRequest"] == cpu and res["resourceMemoryRequest"] == memory
        gpu = res.get("accelerator", {}).get("resourceCount")
        assert gpu == ("1" if stage in training else None)
    assert set(_tasks(spec)) == set(STAGE_EXECUTORS)
    assert spec["defaultPipelineRoot"] == "s3://runs/kfp"


def test_retries_and_caching(compiled: tuple[dict, dict]) -> None:
    spec, _ = compiled
    for name, task in _tasks(spec).items():
        assert task["retryPolicy"]["maxRetryCount"] == 3
        assert task["retryPolicy"]["backoffDuration"] == "30s"
        assert task["retryPolicy"]["backoffFactor"] == 2.0
        cached = task.get("cachingOptions", {}).get("enableCache", False)
        assert cached == (name in {"download-weights", "pretrain"}), name


def test_secret_config_map_and_scheduling(compiled: tuple[dict, dict]) -> None:
    _, k8s = compiled
    assert set(k8s) == set(STAGE_EXECUTORS.values())
    for cfg in k8s.values():
        (secret,) = cfg["secretAsEnv"]
        assert secret["secretName"] == "my-s3"
        assert {e["envVar"] for e in secret["keyToEnv"]} == set(SECRET_KEYS)
        (cmap,) = cfg["configMapAsEnv"]
        assert cmap["configMapName"] == "my-cfg"
        assert [e["envVar"] for e in cmap["keyToEnv"]] == list(CONFIG_MAP_KEYS)
        assert cfg["nodeSelector"]["labels"] == {"pool": "gpu"}
        assert cfg["tolerations"] == [
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
            {"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoExecute"},
        ]


def test_no_credentials_or_injection_when_disabled(tmp_path: Path) -> None:
    settings = ClusterSettings(gpus=0, secret="", config_map="", retries=0)
    path = compile_cli.compile_method("aspc-da", tmp_path, "img:1", settings=settings)
    text = path.read_text()
    assert "secretAsEnv" not in text and "configMapAsEnv" not in text
    assert "retryPolicy" not in text and "nvidia.com/gpu" not in text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("gpu", Toleration("gpu", "NoSchedule", "")),
        ("k=v:NoExecute", Toleration("k", "NoExecute", "v")),
        ("k:PreferNoSchedule", Toleration("k", "PreferNoSchedule", "")),
    ],
)
def test_toleration_parse(text: str, expected: Toleration) -> None:
    assert Toleration.parse(text) == expected


@pytest.mark.parametrize("bad", ["", ":NoSchedule", "k:Sometimes"])
def test_toleration_parse_rejects(bad: str) -> None:
    with pytest.raises(ValueError, match="bad toleration"):
        Toleration.parse(bad)


def test_bad_cli_settings_are_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    for argv in (["--node-selector", "novalue"], ["--toleration", "k:Never"], ["--retries", "-1"]):
        with pytest.raises(SystemExit) as exc:
            compile_cli.main(["--method", "aspc-da", "--out", str(tmp_path), *argv])
        assert exc.value.code == 2
    assert "--node-selector wants KEY=VALUE" in capsys.readouterr().err


def test_local_runs_build_without_retries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """kfp.local honours retry policies: a local run must not sleep through a cluster's backoff."""
    import dcflow_pipelines.build as build_mod
    from dcflow_pipelines import local as local_mod

    from dcflow.config import build_run_config
    from dcflow.methods.registry import get_method

    seen: list[ClusterSettings] = []

    def fake_build(method: str, **kwargs: object) -> object:
        settings = kwargs.get("settings")
        assert isinstance(settings, ClusterSettings)
        seen.append(settings)
        raise RuntimeError("stop after build")

    monkeypatch.setattr(build_mod, "build", fake_build)
    cfg = build_run_config("aspc-da", get_method("aspc-da").Config, {"name": "digits"}, None, [])
    with pytest.raises(RuntimeError, match="stop after build"):
        local_mod.run_local(cfg, tmp_path, str(tmp_path / "w"), "", "e", tmp_path / "log")
    assert [(s.retries, s.gpus, s.secret, s.config_map) for s in seen] == [(0, 0, "", "")]
