"""Static checks of docker/ and e2e/ with real validators from the test extra: hadolint, a Compose
v2 binary's ``config``, the compose-spec JSON schema, yamllint and shellcheck."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DOCKER = ROOT / "docker"
ENV_EXAMPLE = DOCKER / ".env.example"
STANDARD_VARS = (
    "MLFLOW_TRACKING_URI",
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
)


def tool(name: str) -> str:
    path = BIN / name
    found = str(path) if path.is_file() else shutil.which(name)
    if not found:
        pytest.skip(f"{name} is not installed (pip install -e '.[test]')")
    return found


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=ROOT)


def compose_config(*files: str) -> dict:
    argv = [tool("docker-compose")]
    for f in files:
        argv += ["-f", f]
    proc = run(*argv, "--env-file", str(ENV_EXAMPLE), "config", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    return yaml.safe_load(proc.stdout)


def test_dockerfile_passes_hadolint() -> None:
    proc = run(tool("hadolint"), "--failure-threshold", "info", "docker/Dockerfile")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dockerfile_is_non_root_and_copies_only_what_dockerignore_lets_in() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    assert re.findall(r"^USER (\S+)", text, re.M)[-1] == "10001"
    # one file: CPU or CUDA by build argument, base image and package indexes as arguments
    for arg in ("ARG BASE_IMAGE=", "ARG VARIANT=cpu", "ARG TORCH_INDEX=", "ARG PIP_INDEX_URL="):
        assert arg in text, arg
    # secrets only through BuildKit secret mounts, never a build argument or a copied file
    assert "--mount=type=secret,id=ca_bundle" in text and "ARG PIP_CERT" not in text
    allowed = {
        line[1:].rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    copied = {
        m for line in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M) for m in line.split()
    }
    assert copied <= allowed, copied - allowed


def test_torch_requirements_match_pyproject() -> None:
    import tomllib

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    torch = [d for d in deps if d.startswith(("torch>", "torchvision>"))]
    lines = (DOCKER / "requirements-torch.txt").read_text().splitlines()
    assert [line for line in lines if line and not line.startswith("#")] == torch


def test_documented_build_tag_is_the_compiled_default() -> None:
    import tomllib
    from dcflow_components._base import DEFAULT_IMAGE

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    build = (DOCKER / "build.sh").read_text()
    assert 'tag="${tag:-ghcr.io/dcflow/dcflow:$version}"' in build
    assert DEFAULT_IMAGE == f"ghcr.io/dcflow/dcflow:{version}"
    assert ENV_EXAMPLE.read_text().count(f"DCFLOW_IMAGE={DEFAULT_IMAGE}") == 1
    chart = yaml.safe_load((ROOT / "charts" / "dcflow" / "Chart.yaml").read_text())
    assert DEFAULT_IMAGE.endswith(":" + chart["appVersion"])


def test_compose_config_is_valid_and_binds_to_localhost() -> None:
    cfg = compose_config("docker/compose.yaml")
    services = cfg["services"]
    assert {"minio", "minio-buckets", "postgres", "mlflow"} == set(services)
    for name, svc in services.items():
        for port in svc.get("ports", []):
            assert port["host_ip"] == "127.0.0.1", (name, port)
        if name != "minio-buckets":
            assert "healthcheck" in svc, name
    assert re.fullmatch(r"minio/minio:RELEASE\.[0-9TZ-]+", services["minio"]["image"])
    assert set(cfg["volumes"]) == {"minio-data", "postgres-data"}
    mlflow = " ".join(services["mlflow"]["command"])
    assert "--backend-store-uri" in mlflow and "postgresql" in mlflow
    assert "--artifacts-destination" in mlflow  # artifacts proxied to MinIO
    assert "PASSWORD" not in mlflow.replace("POSTGRES_DB", "")  # no secret on a command line


def test_compose_matches_the_compose_spec_schema() -> None:
    proc = run(
        tool("check-jsonschema"),
        "--builtin-schema",
        "vendor.compose-spec",
        "docker/compose.yaml",
        "e2e/compose.kind.yaml",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_compose_needs_the_env_file() -> None:
    proc = run(tool("docker-compose"), "-f", "docker/compose.yaml", "config", "-q")
    assert proc.returncode != 0 and "set MINIO_ROOT_PASSWORD in docker/.env" in proc.stderr


def test_env_example_documents_every_variable_compose_reads() -> None:
    text = (DOCKER / "compose.yaml").read_text()
    used = set(re.findall(r"(?<!\$)\$\{([A-Z_]+)", text))
    documented = set(re.findall(r"^([A-Z_]+)=", ENV_EXAMPLE.read_text(), re.M))
    assert used <= documented, used - documented


def test_kind_overlay_joins_the_kind_network() -> None:
    cfg = compose_config("docker/compose.yaml", "e2e/compose.kind.yaml")
    assert cfg["networks"]["kind"]["external"] is True
    assert "dcflow-minio" in cfg["services"]["minio"]["networks"]["kind"]["aliases"]
    assert (
        "dcflow-mlflow:*" in cfg["services"]["mlflow"]["environment"]["MLFLOW_SERVER_ALLOWED_HOSTS"]
    )


def test_standins_override_uses_the_host_network_only() -> None:
    cfg = compose_config("docker/compose.yaml", "docker/compose.standins.yaml")
    services = cfg["services"]
    assert set(services) == {"minio", "minio-buckets", "postgres", "mlflow"}
    for name, svc in services.items():
        assert svc["network_mode"] == "host", name  # no bridge, no private address
        assert not svc.get("ports"), name
        assert not svc.get("networks"), name
    assert "moto.server" in services["minio"]["command"]
    assert "127.0.0.1" in services["minio"]["command"]
    assert services["postgres"]["build"]["dockerfile"] == "postgres.Dockerfile"
    mlflow = " ".join(services["mlflow"]["command"])
    assert "--host 127.0.0.1" in mlflow and "postgresql+psycopg2://127.0.0.1:" in mlflow
    # the shipped file keeps the real images
    real = compose_config("docker/compose.yaml")["services"]
    assert real["minio"]["image"].startswith("minio/minio:")
    assert real["postgres"]["image"].startswith("postgres:")


def test_scripts_pass_shellcheck() -> None:
    scripts = ["docker/build.sh", "docker/pip-env.sh", "docker/standins/postgres-entrypoint.sh"]
    proc = run(tool("shellcheck"), "-s", "sh", scripts[1], scripts[2])
    assert proc.returncode == 0, proc.stdout
    proc = run(tool("shellcheck"), scripts[0])
    assert proc.returncode == 0, proc.stdout


def test_build_script_help_and_bad_option() -> None:
    ok = run("bash", "docker/build.sh", "--help")
    assert ok.returncode == 0 and "--offline-base" in ok.stdout and "--variant" in ok.stdout
    bad = run("bash", "docker/build.sh", "--no-such-option")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "unknown option" in bad.stderr
    variant = run("bash", "docker/build.sh", "--variant", "tpu")
    assert variant.returncode != 0 and "--variant must be cpu or cuda" in variant.stderr


YAML_FILES = [
    "e2e/kind.yaml",
    "e2e/compose.kind.yaml",
    "docker/compose.yaml",
    "docker/compose.standins.yaml",
    "charts/dcflow/values.yaml",
    "charts/dcflow/Chart.yaml",
    "configs",
]


def test_plain_yaml_passes_yamllint() -> None:
    proc = run(tool("yamllint"), "-c", ".yamllint.yaml", "--strict", *YAML_FILES)
    assert proc.returncode == 0, proc.stdout


def test_kind_config_is_a_pinned_single_node_cluster() -> None:
    cfg = yaml.safe_load((ROOT / "e2e" / "kind.yaml").read_text())
    assert cfg["kind"] == "Cluster" and cfg["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    (node,) = cfg["nodes"]
    assert node["role"] == "control-plane"
    assert re.fullmatch(r"kindest/node:v1\.\d+\.\d+", node["image"])


def test_e2e_script_passes_shellcheck_and_asserts_the_acceptance() -> None:
    proc = run(tool("shellcheck"), "e2e/run.sh")
    assert proc.returncode == 0, proc.stdout
    text = (ROOT / "e2e" / "run.sh").read_text()
    assert re.search(r'KFP_VERSION="\$\{KFP_VERSION:-\d+\.\d+\.\d+\}"', text)  # pinned release
    for needle in ("--gpus 0", "--submit", 'run.state == "SUCCEEDED"', '{"acc", "nmi", "ari"}'):
        assert needle in text, needle


def test_deploy_guide_runs_dcflow_with_the_four_standard_variables_only() -> None:
    deploy = (ROOT / "docs" / "deploy.md").read_text()
    block = re.search(r"```bash\n((?:export [A-Z_]+=.*\n)+)", deploy)
    assert block is not None
    assert re.findall(r"export ([A-Z_]+)=", block.group(1)) == list(STANDARD_VARS)
