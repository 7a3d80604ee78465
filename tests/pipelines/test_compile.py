"""Every method's pipeline compiles to a valid PipelineSpec, GPU requests on the CUDA image."""

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]

from dcflow_pipelines import compile as compile_cli  # noqa: E402

from dcflow.methods.registry import get_method, method_names  # noqa: E402


def _executors(path: Path) -> dict:
    return next(yaml.safe_load_all(path.read_text()))["deploymentSpec"]["executors"]


@pytest.mark.parametrize("method", method_names())
def test_every_pipeline_compiles_and_validates(method: str, tmp_path: Path) -> None:
    path = compile_cli.compile_method(method, tmp_path, "example.org/dcflow:test", gpus=1)
    docs = list(yaml.safe_load_all(path.read_text()))
    assert len(docs) == 2  # PipelineSpec + kfp-kubernetes PlatformSpec
    compile_cli.validate(docs)
    executors = _executors(path)
    gpu = {
        name
        for name, e in executors.items()
        if e["container"].get("resources", {}).get("accelerator", {}).get("resourceType")
        == "nvidia.com/gpu"
    }
    cls = get_method(method)
    assert gpu == {f"exec-{s}" for s in cls.training_stages if s in cls.stages}
    for name, e in executors.items():  # a GPU request always comes with the CUDA build
        cuda = name in gpu
        assert e["container"]["image"] == "example.org/dcflow:test" + ("-cuda" if cuda else "")
        env = {v["name"]: v["value"] for v in e["container"].get("env", [])}
        assert env.get("DCFLOW_REQUIRE_CUDA") == ("1" if cuda else None), name
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


def _task_images(path: Path) -> dict[str, tuple[str, bool, dict[str, str]]]:
    """Stage task name -> (image, requests an accelerator, env), over every DAG of the spec."""
    spec = next(yaml.safe_load_all(path.read_text()))
    tasks = dict(spec["root"]["dag"]["tasks"])
    for comp in spec["components"].values():
        tasks.update(comp.get("dag", {}).get("tasks", {}))
    out = {}
    for task in tasks.values():
        executor = spec["components"][task["componentRef"]["name"]].get("executorLabel")
        if executor:
            container = spec["deploymentSpec"]["executors"][executor]["container"]
            env = {v["name"]: v["value"] for v in container.get("env", [])}
            gpu = bool(container.get("resources", {}).get("accelerator"))
            out[task["taskInfo"]["name"]] = (container["image"], gpu, env)
    return out


@pytest.mark.parametrize(
    ("extra", "cuda"),
    [([], "reg.example/dcflow:2.0-cuda"), (["--cuda-image", "gpu.example/d:7"], "gpu.example/d:7")],
)
def test_gpu_tasks_run_the_cuda_image(tmp_path: Path, extra: list[str], cuda: str) -> None:
    argv = ["--method", "aspc-da", "--out", str(tmp_path), "--gpus", "1"]
    assert compile_cli.main([*argv, "--image", "reg.example/dcflow:2.0", *extra]) == 0
    tasks = _task_images(tmp_path / "aspc-da.yaml")
    training = get_method("aspc-da").training_stages
    assert {name for name, (_, gpu, _) in tasks.items() if gpu} == set(training)
    for name, (image, gpu, env) in tasks.items():
        assert image == (cuda if gpu else "reg.example/dcflow:2.0"), name
        assert env == ({"DCFLOW_REQUIRE_CUDA": "1"} if gpu else {}), name


def test_without_gpus_every_task_runs_the_cpu_image(tmp_path: Path) -> None:
    argv = ["--method", "aspc-da", "--out", str(tmp_path), "--gpus", "0", "--image", "r/d:3"]
    assert compile_cli.main([*argv, "--cuda-image", "r/d:3-cuda"]) == 0
    tasks = _task_images(tmp_path / "aspc-da.yaml")
    assert {image for image, _, _ in tasks.values()} == {"r/d:3"}
    assert not any(gpu or env for _, gpu, env in tasks.values())
    assert "DCFLOW_REQUIRE_CUDA" not in (tmp_path / "aspc-da.yaml").read_text()


def test_the_cuda_image_of_a_comparison(tmp_path: Path) -> None:
    argv = ["--compare", "aspc-da", "--compare-id", "g1", "--out", str(tmp_path), "--gpus", "2"]
    assert compile_cli.main([*argv, "--image", "r/d:4"]) == 0
    tasks = _task_images(tmp_path / "compare-g1.yaml")
    assert tasks["report"] == ("r/d:4", False, {})
    assert tasks["pretrain"] == ("r/d:4-cuda", True, {"DCFLOW_REQUIRE_CUDA": "1"})


@pytest.mark.parametrize(
    ("image", "cuda"),
    [
        ("ghcr.io/dcflow/dcflow:0.1.0", "ghcr.io/dcflow/dcflow:0.1.0-cuda"),
        ("localhost:5000/dcflow", "localhost:5000/dcflow:latest-cuda"),
        ("dcflow:1.2.3-cuda", "dcflow:1.2.3-cuda"),  # already the CUDA build
    ],
)
def test_cuda_variant(image: str, cuda: str) -> None:
    from dcflow_components._base import cuda_variant

    assert cuda_variant(image) == cuda


def test_default_cuda_image_is_what_build_sh_tags() -> None:
    """``docker/build.sh --variant cuda`` tags ``ghcr.io/dcflow/dcflow:<version>-cuda``."""
    import re

    from dcflow_components._base import DEFAULT_CUDA_IMAGE, DEFAULT_IMAGE

    text = (ROOT / "pyproject.toml").read_text()
    version = re.search(r'^version = "(.*)"$', text, re.MULTILINE).group(1)  # as build.sh reads it
    assert DEFAULT_CUDA_IMAGE == f"ghcr.io/dcflow/dcflow:{version}-cuda" == DEFAULT_IMAGE + "-cuda"


def test_a_digest_image_needs_an_explicit_cuda_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = "reg.example/dcflow@sha256:" + "0" * 64
    argv = ["--method", "aspc-da", "--out", str(tmp_path), "--image", image]
    with pytest.raises(SystemExit) as exc:
        compile_cli.main([*argv, "--gpus", "1"])
    assert exc.value.code == 2 and "pass --cuda-image" in capsys.readouterr().err
    assert compile_cli.main([*argv, "--gpus", "0"]) == 0
