"""The declared floors of kfp and kfp-kubernetes, installed alone, compile and run what we use.

A fresh venv gets exactly the ``>=`` floors of kfp and kfp-kubernetes from pyproject.toml; the
environment running the tests (dcflow, torch, ...) is appended behind it with a .pth file, so the
floor kfp wins every import. Then every method's pipeline and a comparison compile through
``pipelines/compile.py`` with every cluster option (the kfp-kubernetes calls behind them), and
kfp.local runs the dsl.If/dsl.Else + dsl.OneOf shape of the weights branch. Why these floors:
kfp-kubernetes 2.15.0 added ``optional`` to ``use_config_map_as_env`` / ``use_secret_as_env``
(2.14.6: TypeError); kfp 2.17.0 is the first whose kfp.local joins ``dsl.OneOf`` parameters (2.16.0
raises "'dsl.OneOf' is not yet supported in local execution", 2.15.0 rejects dsl.Condition too).
Skips with its reason when the package index cannot be reached.
"""

import json
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]

from dcflow_pipelines import compile as compile_cli  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

FLOORED = ("kfp", "kfp-kubernetes")
CLUSTER_OPTIONS = [
    "--gpus", "1", "--image", "reg.example/dcflow:9", "--image-pull-secret", "regcred",
    "--cpu-limit", "2", "--memory-limit", "4Gi", "--train-cpu-limit", "4",
    "--train-memory-limit", "8Gi", "--timeout", "600", "--train-timeout", "7200",
    "--pvc", "datasets:/data", "--node-selector", "zone=a", "--toleration", "dedicated=ml",
    "--gpu-node-selector", "pool=gpu", "--gpu-toleration", "nvidia.com/gpu",
    "--mlflow-secret", "mlflow-auth", "--retries", "1", "--no-cache",
]  # fmt: skip
LOCAL_SCRIPT = """
import sys
from kfp import dsl, local

kw = {"base_image": "python:3.11", "install_kfp_package": False}

@dsl.component(**kw)
def found(flag: bool) -> bool:
    return flag

@dsl.component(**kw)
def make(tag: str) -> str:
    return tag

@dsl.component(**kw)
def use(uri: str) -> str:
    return "used " + uri

@dsl.pipeline
def weights(flag: bool) -> str:
    hit = found(flag=flag)
    with dsl.If(hit.output == False):
        miss = make(tag="pretrained")
    with dsl.Else():
        cached = make(tag="cached")
    return use(uri=dsl.OneOf(miss.output, cached.output)).output

local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=sys.argv[1])
print("RESULT", weights(flag=False).output, "|", weights(flag=True).output)
"""


def declared_floors() -> dict[str, str]:
    """``{name: floor}``: the ``>=`` bounds of kfp and kfp-kubernetes in [project] dependencies."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    floors = {}
    for dep in deps:
        name, spec = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*(?:\[[^\]]*\])?\s*(.*)", dep).groups()
        floor = re.search(r">=\s*([0-9][0-9A-Za-z.]*)", spec)
        if name.lower() in FLOORED and floor:
            floors[name.lower()] = floor.group(1)
    assert set(floors) == set(FLOORED), f"no >= floor for {set(FLOORED) - set(floors)}"
    return floors


def _release(version: str) -> tuple[int, ...]:
    parts = [int(p) for p in re.findall(r"\d+", version)[:3]]
    return tuple(parts + [0] * (3 - len(parts)))


def _run(
    cmd: list[str], timeout: float = 600, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd)


@pytest.fixture(scope="module")
def floor_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with exactly the floors of kfp and kfp-kubernetes, the test env behind them."""
    floors = declared_floors()
    try:
        probe = _run([sys.executable, "-m", "pip", "index", "versions", "kfp"], timeout=180)
    except subprocess.TimeoutExpired:
        pytest.skip("package index unreachable: `pip index versions kfp` timed out")
    if probe.returncode != 0 or "Available versions" not in probe.stdout:
        last = (probe.stderr.strip() or probe.stdout.strip() or "no answer").splitlines()[-1]
        pytest.skip(f"package index unreachable (pip index versions kfp): {last[:200]}")
    env = tmp_path_factory.mktemp("floors") / "venv"
    made = _run([sys.executable, "-m", "venv", "--without-pip", str(env)])
    assert made.returncode == 0, made.stderr
    python = env / "bin" / "python"
    pins = [f"{name}=={floor}" for name, floor in floors.items()]
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-input", *pins]
    installed = _run(pip, timeout=800)
    assert installed.returncode == 0, (
        f"{' '.join(pins)} do not install:\n{installed.stderr[-3000:]}"
    )
    site = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    project_site = sysconfig.get_paths()["purelib"]  # this env: dcflow (editable), torch, ...
    # processed after the venv's own site-packages, so the floor kfp comes first on sys.path
    pth = Path(site.stdout.strip()) / "zz_dcflow_project.pth"
    pth.write_text(f"import site; site.addsitedir({project_site!r})\n")
    return python


def test_the_floors_are_what_gets_imported(floor_python: Path) -> None:
    code = (
        "import json, importlib.metadata as m, kfp, kfp.kubernetes, dcflow;"
        "print(json.dumps({'kfp': m.version('kfp'), 'kfp-kubernetes': m.version('kfp-kubernetes'),"
        "'files': [kfp.__file__, kfp.kubernetes.__file__]}))"
    )
    done = _run([str(floor_python), "-c", code])
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    for name, floor in declared_floors().items():
        assert _release(found[name]) == _release(floor), (name, found[name], floor)
    venv = floor_python.parent.parent
    assert all(Path(f).is_relative_to(venv) for f in found["files"]), found["files"]


def _check(path: Path) -> None:
    """Valid for the test env's protos, and the options reached the Kubernetes part."""
    docs = list(yaml.safe_load_all(path.read_text()))
    compile_cli.validate(docs)
    text = path.read_text()
    for needle in ("reg.example/dcflow:9-cuda", "DCFLOW_REQUIRE_CUDA", "activeDeadlineSeconds"):
        assert needle in text, (path.name, needle)
    k8s = docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    for name, cfg in k8s.items():
        assert [s["optional"] for s in cfg["secretAsEnv"]] == [False, True], name
        assert cfg["configMapAsEnv"][0]["optional"] is True, name
        assert cfg["imagePullSecret"] and cfg["pvcMount"] and cfg["tolerations"], name


def test_every_pipeline_compiles_at_the_floors(floor_python: Path, tmp_path: Path) -> None:
    script = str(ROOT / "pipelines" / "compile.py")
    out = tmp_path / "compiled"
    done = _run([str(floor_python), script, "--method", "all", "--out", str(out), *CLUSTER_OPTIONS])
    assert done.returncode == 0, done.stderr[-3000:]
    # a fresh process's registry: this one may hold test plugins registered by other tests
    names = _run(
        [
            str(floor_python),
            "-c",
            "from dcflow.methods.registry import method_names as m; print(*m())",
        ]
    )
    assert sorted(p.stem for p in out.glob("*.yaml")) == sorted(names.stdout.split()) != []
    argv = ["--compare", "all", "--compare-id", "floors", "--out", str(out), *CLUSTER_OPTIONS]
    done = _run([str(floor_python), script, *argv])
    assert done.returncode == 0, done.stderr[-3000:]
    for path in out.glob("*.yaml"):
        _check(path)


def test_kfp_local_joins_if_else_with_oneof_at_the_floor(
    floor_python: Path, tmp_path: Path
) -> None:
    """The weights branch of every method with pretraining, as ``dcflow run`` executes it."""
    script = tmp_path / "weights.py"
    script.write_text(LOCAL_SCRIPT)
    done = _run([str(floor_python), str(script), str(tmp_path / "root")], cwd=tmp_path)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert "RESULT used pretrained | used cached" in done.stdout
