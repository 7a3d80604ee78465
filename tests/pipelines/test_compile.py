"""Every method's pipeline compiles to a valid PipelineSpec with the right GPU requests."""

import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "pipelines"))

import compile as compile_cli  # noqa: E402

from dcflow.registry import get_method, method_names  # noqa: E402


def _executors(path: Path) -> dict:
    return yaml.safe_load(path.read_text())["deploymentSpec"]["executors"]


@pytest.mark.parametrize("method", method_names())
def test_every_pipeline_compiles_and_validates(method: str, tmp_path: Path) -> None:
    path = compile_cli.compile_method(method, tmp_path, "example.org/dcflow:test", gpus=1)
    spec = yaml.safe_load(path.read_text())
    compile_cli.validate(spec)
    executors = _executors(path)
    assert {e["container"]["image"] for e in executors.values()} == {"example.org/dcflow:test"}
    gpu = {
        name
        for name, e in executors.items()
        if e["container"].get("resources", {}).get("accelerator", {}).get("resourceType")
        == "nvidia.com/gpu"
    }
    assert gpu == {f"exec-{stage}" for stage in get_method(method).training_stages}
    for e in executors.values():
        assert "pip install" not in " ".join(e["container"].get("command", []))


def test_gpus_zero_removes_the_request(tmp_path: Path) -> None:
    path = compile_cli.compile_method("aspc-da", tmp_path, "img:1", gpus=0)
    assert "nvidia.com/gpu" not in path.read_text()


def test_compile_cli_all_and_unknown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert compile_cli.main(["--method", "all", "--out", str(tmp_path)]) == 0
    assert sorted(p.stem for p in tmp_path.glob("*.yaml")) == method_names()
    assert compile_cli.main(["--method", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown method 'nope'" in capsys.readouterr().err
