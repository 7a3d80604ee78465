"""The comparison pipeline: nested method branches joined by a report stage, run with kfp.local."""

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = Path(__file__).parent / "plugins"

from dcflow_pipelines import compile as compile_cli  # noqa: E402
from dcflow_pipelines.compare_pipeline import build_comparison, cell_configs  # noqa: E402


@pytest.fixture
def plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(PLUGINS))
    monkeypatch.setenv("DCFLOW_PLUGINS", "toy_layout")
    import dcflow.methods as methods

    methods._load_plugins()


def test_cells_carry_the_comparison_tag_and_scoped_overrides() -> None:
    cells = cell_configs(
        ["aspc-da"], ["digits"], [0, 3], "c1", ["aspc-da:pretrain.epochs=2", "threads=1"]
    )
    assert [name for name, _ in cells] == ["aspc-da-digits-s0", "aspc-da-digits-s3"]
    cfg = yaml.safe_load(cells[1][1])
    assert cfg["tags"] == {"comparison": "c1"} and cfg["seed"] == 3
    assert cfg["params"]["pretrain"]["epochs"] == 2 and cfg["threads"] == 1


def test_comparison_compiles_with_parallel_branches(tmp_path: Path) -> None:
    from kfp import compiler

    cells = cell_configs(["aspc-da"], ["digits"], [0, 1], "c2")
    path = tmp_path / "cmp.yaml"
    compiler.Compiler().compile(build_comparison(cells, "c2", gpus=1), str(path))
    spec = next(yaml.safe_load_all(path.read_text()))  # then the platform (kubernetes) spec
    compile_cli.validate(spec)
    tasks = spec["root"]["dag"]["tasks"]
    branches = [t for t in tasks if t != "report"]
    assert len(branches) == 2
    assert sorted(tasks["report"]["dependentTasks"]) == sorted(branches)
    for b in branches:  # branches depend on nothing: they run in parallel
        assert not tasks[b].get("dependentTasks")


def test_comparison_runs_locally(plugins: None, tmp_path: Path) -> None:
    from kfp import local

    cells = cell_configs(
        ["toy-init-only", "toy-init-refine"], ["digits"], [0], "c3", ["dataset.limit=150"]
    )
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(tmp_path / "root"),
        raise_on_error=True,
    )
    task = build_comparison(cells, "c3", gpus=0)(tracking_uri=f"sqlite:///{tmp_path}/m.db")
    lines = [ln for ln in task.output.splitlines() if ln.startswith("| digits")]
    assert [ln.split("|")[3].strip() for ln in lines] == ["toy-init-only", "toy-init-refine"]


def test_compile_cli_writes_the_comparison(tmp_path: Path) -> None:
    args = ["--compare", "aspc-da", "--seeds", "0,1", "--compare-id", "c4", "--out", str(tmp_path)]
    assert compile_cli.main([*args, "--gpus", "0"]) == 0
    spec = next(yaml.safe_load_all((tmp_path / "compare-c4.yaml").read_text()))
    assert spec["pipelineInfo"]["name"] == "dcflow-compare-c4"
    assert len(spec["root"]["dag"]["tasks"]) == 3  # two branches and the report


def test_report_gets_the_cluster_settings_and_the_pipeline_root(tmp_path: Path) -> None:
    """``report`` is configured like every other light stage; --pipeline-root reaches the spec."""
    argv = [
        "--compare", "aspc-da", "--compare-id", "c5", "--out", str(tmp_path), "--gpus", "0",
        "--pipeline-root", "s3://runs/cmp", "--s3-secret", "my-s3", "--config-map", "my-cfg",
        "--cpu", "500m", "--memory", "1Gi", "--retries", "3",
    ]  # fmt: skip
    assert compile_cli.main(argv) == 0
    docs = list(yaml.safe_load_all((tmp_path / "compare-c5.yaml").read_text()))
    compile_cli.validate(docs)
    spec, platform = docs
    assert spec["defaultPipelineRoot"] == "s3://runs/cmp"
    report = spec["root"]["dag"]["tasks"]["report"]
    assert report["taskInfo"]["name"] == "report"
    assert not report.get("cachingOptions", {}).get("enableCache", False)
    assert report["retryPolicy"] == {
        "backoffDuration": "30s",
        "backoffFactor": 2.0,
        "backoffMaxDuration": "600s",
        "maxRetryCount": 3,
    }
    res = spec["deploymentSpec"]["executors"]["exec-report"]["container"]["resources"]
    assert res["resourceCpuRequest"] == "500m" and res["resourceMemoryRequest"] == "1Gi"
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert k8s["exec-report"]["secretAsEnv"][0]["secretName"] == "my-s3"
    assert k8s["exec-report"]["configMapAsEnv"][0]["configMapName"] == "my-cfg"
    assert k8s["exec-report"] == k8s["exec-evaluate"]  # the same as the branches' light stages
    evaluate = spec["deploymentSpec"]["executors"]["exec-evaluate"]["container"]["resources"]
    assert res == evaluate


def test_build_comparison_honours_the_settings_pipeline_root(tmp_path: Path) -> None:
    from dcflow_pipelines.cluster import ClusterSettings
    from kfp import compiler

    cells = cell_configs(["aspc-da"], ["digits"], [0], "c6")
    settings = ClusterSettings(pipeline_root="s3://bucket/c6")
    path = tmp_path / "cmp.yaml"
    compiler.Compiler().compile(build_comparison(cells, "c6", gpus=0, settings=settings), str(path))
    spec = next(yaml.safe_load_all(path.read_text()))
    assert spec["defaultPipelineRoot"] == "s3://bucket/c6"
    assert "nvidia.com/gpu" not in path.read_text()  # gpus=0 overrides settings.gpus
