"""Pull secrets, limits, timeouts, PVCs, GPU-only scheduling, MLflow auth: in the compiled YAML."""

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]

from dcflow_pipelines import compile as compile_cli  # noqa: E402
from dcflow_pipelines.cluster import (  # noqa: E402
    MLFLOW_SECRET_KEYS,
    ClusterSettings,
    PvcMount,
    Toleration,
)

TRAINING = {"exec-pretrain", "exec-refine"}  # aspc-da's training stages: the GPU ones here
LIGHT = {
    "exec-download-weights",
    "exec-verify-weights",
    "exec-cluster-init",
    "exec-confident-sample-selection",
    "exec-evaluate",
}
GENERAL_TOL = {"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoExecute"}
GPU_TOL = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def _compile(out: Path, *extra: str) -> tuple[dict, dict]:
    assert compile_cli.main(["--method", "aspc-da", "--out", str(out), *extra]) == 0
    docs = list(yaml.safe_load_all((out / "aspc-da.yaml").read_text()))
    compile_cli.validate(docs)
    k8s = docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"] if docs[1:] else {}
    return docs[0]["deploymentSpec"]["executors"], k8s


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:
    argv = [
        "--gpus", "1", "--image-pull-secret", "regcred", "--image-pull-secret", "mirror",
        "--cpu-limit", "2", "--memory-limit", "3Gi",
        "--train-cpu-limit", "6", "--train-memory-limit", "12Gi",
        "--timeout", "900", "--train-timeout", "14400",
        "--pvc", "datasets:/data", "--pvc", "scratch:/scratch",
        "--node-selector", "zone=a", "--toleration", "dedicated=ml:NoExecute",
        "--gpu-node-selector", "pool=gpu", "--gpu-toleration", "nvidia.com/gpu",
        "--mlflow-secret", "mlflow-auth",
    ]  # fmt: skip
    return _compile(tmp_path_factory.mktemp("opts"), *argv)


def test_every_stage_is_covered(compiled: tuple[dict, dict]) -> None:
    executors, k8s = compiled
    assert set(executors) == set(k8s) == TRAINING | LIGHT


def test_image_pull_secrets_on_every_stage(compiled: tuple[dict, dict]) -> None:
    for cfg in compiled[1].values():
        assert [s["secretName"] for s in cfg["imagePullSecret"]] == ["regcred", "mirror"]


def test_cpu_and_memory_limits_per_stage_kind(compiled: tuple[dict, dict]) -> None:
    for name, executor in compiled[0].items():
        res = executor["container"]["resources"]
        cpu, memory = ("6", "12Gi") if name in TRAINING else ("2", "3Gi")
        assert (res["resourceCpuLimit"], res["resourceMemoryLimit"]) == (cpu, memory), name
        assert (res["resourceCpuRequest"], res["resourceMemoryRequest"]) == (
            ("2", "4Gi") if name in TRAINING else ("1", "2Gi")
        )


def test_timeouts_per_stage_kind(compiled: tuple[dict, dict]) -> None:
    for name, cfg in compiled[1].items():
        assert cfg["activeDeadlineSeconds"] == ("14400" if name in TRAINING else "900"), name


def test_pvcs_mounted_on_every_stage(compiled: tuple[dict, dict]) -> None:
    for cfg in compiled[1].values():
        mounts = [
            (m["pvcNameParameter"]["runtimeValue"]["constant"], m["mountPath"])
            for m in cfg["pvcMount"]
        ]
        assert mounts == [("datasets", "/data"), ("scratch", "/scratch")]


def test_gpu_scheduling_only_on_gpu_stages(compiled: tuple[dict, dict]) -> None:
    for name, cfg in compiled[1].items():
        gpu = name in TRAINING
        labels = {"zone": "a", "pool": "gpu"} if gpu else {"zone": "a"}
        assert cfg["nodeSelector"]["labels"] == labels, name
        assert cfg["tolerations"] == ([GENERAL_TOL, GPU_TOL] if gpu else [GENERAL_TOL]), name


def test_mlflow_auth_keys_are_optional_env(compiled: tuple[dict, dict]) -> None:
    for cfg in compiled[1].values():
        s3, mlflow = cfg["secretAsEnv"]
        assert s3["secretName"] == "dcflow-s3" and not s3.get("optional", False)
        assert mlflow["secretName"] == "mlflow-auth" and mlflow["optional"] is True
        keys = [(e["secretKey"], e["envVar"]) for e in mlflow["keyToEnv"]]
        assert keys == [(k, k) for k in MLFLOW_SECRET_KEYS]
    assert set(MLFLOW_SECRET_KEYS) == {
        "MLFLOW_TRACKING_USERNAME",
        "MLFLOW_TRACKING_PASSWORD",
        "MLFLOW_TRACKING_TOKEN",
        "MLFLOW_TRACKING_INSECURE_TLS",
    }


def test_defaults_add_none_of_these(tmp_path: Path) -> None:
    executors, k8s = _compile(tmp_path, "--gpus", "1")
    for executor in executors.values():
        res = executor["container"]["resources"]
        assert "resourceCpuLimit" not in res and "resourceMemoryLimit" not in res
    for cfg in k8s.values():
        assert not {"imagePullSecret", "pvcMount", "activeDeadlineSeconds"} & set(cfg)
        assert "nodeSelector" not in cfg and "tolerations" not in cfg
        assert [s["secretName"] for s in cfg["secretAsEnv"]] == ["dcflow-s3"]


def test_local_settings_need_no_cluster(tmp_path: Path) -> None:
    """``ClusterSettings.local()`` (kfp.local runs) asks nothing of a cluster."""
    s = ClusterSettings.local()
    assert (s.gpus, s.retries, s.secret, s.config_map, s.mlflow_secret) == (0, 0, "", "", "")
    assert (s.image_pull_secrets, s.pvcs, s.tolerations, s.gpu_tolerations) == ((), (), (), ())
    assert s.node_selector == {} == s.gpu_node_selector and s.pipeline_root == ""
    assert (s.timeout, s.train_timeout) == (0, 0)
    assert not (s.cpu_limit or s.memory_limit or s.train_cpu_limit or s.train_memory_limit)
    path = compile_cli.compile_method("aspc-da", tmp_path, "img:1", settings=s)
    text = path.read_text()
    for needle in ("kubernetes", "retryPolicy", "nvidia.com/gpu", "DCFLOW_REQUIRE_CUDA", "Limit"):
        assert needle not in text, needle


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--pvc", "datasets"], "bad PVC mount 'datasets'"),
        (["--pvc", "Bad_Name:/data"], "want NAME:/MOUNT/PATH"),
        (["--pvc", "a:/data", "--pvc", "b:/data"], "two PVCs at the same mount path"),
        (["--memory-limit", "1Gi"], "--memory-limit 1Gi is below --memory"),
        (["--train-cpu-limit", "1500m"], "--train-cpu-limit 1500m is below --train-cpu"),
        (["--cpu-limit", "lots"], "bad --cpu-limit 'lots'"),
        (["--train-memory", "4GB"], "bad --train-memory '4GB'"),
        (["--timeout", "-1"], "--timeout must be >= 0"),
        (["--gpu-node-selector", "pool"], "--gpu-node-selector wants KEY=VALUE"),
        (["--gpu-toleration", "k:Never"], "bad toleration 'k:Never'"),
    ],
)
def test_bad_values_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exc:
        compile_cli.main(["--method", "aspc-da", "--out", str(tmp_path), *argv])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing compiled


def test_parsers() -> None:
    assert PvcMount.parse("my.data-1:/mnt/data") == PvcMount("my.data-1", "/mnt/data")
    assert Toleration.parse("nvidia.com/gpu") == Toleration("nvidia.com/gpu", "NoSchedule", "")
    assert ClusterSettings(memory="1536Mi", memory_limit="2Gi").memory_limit == "2Gi"
    assert ClusterSettings(cpu="500m", cpu_limit="0.5").cpu_limit == "0.5"  # equal is fine
