"""charts/dcflow: helm lint (strict) and render with default and non-default values, every rendered
manifest checked against the Kubernetes JSON schemas (strict: unknown fields fail)."""

from __future__ import annotations

import base64
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "dcflow"
KUBE = "1.30.0"
sys.path.insert(0, str(ROOT / "pipelines"))

helm = pytest.importorskip("helm_python", reason="helm-python-sdk is in the test extra")
kv = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate is in the test extra")

from dcflow_pipelines.cluster import CONFIG_MAP_KEYS, SECRET_KEYS  # noqa: E402

CUSTOM: dict[str, Any] = {
    "image": {"repository": "registry.example/dcflow", "tag": "1.2.3-cuda"},
    "configMapName": "ml-config",
    "secretName": "ml-s3",
    "s3": {
        "endpoint": "https://s3.example.org",
        "bucket": "lab",
        "existingSecret": "lab-s3-keys",
    },
    "minio": {"enabled": False},
    "mlflow": {"enabled": False, "trackingUri": "http://mlflow.lab.svc:5000"},
    "kfpLauncher": {"enabled": True},
    "upload": {
        "kfpHost": "http://ml-pipeline.kubeflow:8888",
        "method": "aspc-da",
        "gpus": 2,
        "nodeSelector": {"pool": "gpu"},
        "tolerations": [
            {"key": "nvidia.com/gpu", "effect": "NoSchedule"},
            {"key": "dedicated", "value": "ml", "effect": "NoExecute"},
        ],
    },
}


def render(values: dict[str, Any]) -> list[dict[str, Any]]:
    with helm.Chart.load(str(CHART)) as chart:
        files = chart.render(values, name="dcflow", namespace="kubeflow", is_install=True)
    return [
        doc
        for path, text in files.items()
        if path.endswith(".yaml")
        for doc in yaml.safe_load_all(text)
        if doc
    ]


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def pods(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d["spec"]["template"]["spec"] for d in docs if d["kind"] in {"Deployment", "Job"}]


@pytest.mark.parametrize("values", [{}, CUSTOM], ids=["default", "custom"])
def test_lint_strict(values: dict[str, Any]) -> None:
    result = helm.lint(
        str(CHART), values, strict=True, namespace="kubeflow", kube_version=f"v{KUBE}"
    )
    assert result["errors"] == []
    assert [m for m in result["messages"] if m["severity"] > 1] == []  # warnings fail too


@pytest.mark.parametrize("values", [{}, CUSTOM], ids=["default", "custom"])
def test_rendered_manifests_match_the_kubernetes_schemas(values: dict[str, Any]) -> None:
    docs = render(values)
    assert docs
    for doc in docs:
        kv.validate(doc, KUBE, strict=True)  # raises ValidationError on any bad field


@pytest.mark.parametrize("values", [{}, CUSTOM], ids=["default", "custom"])
def test_every_pod_runs_as_non_root(values: dict[str, Any]) -> None:
    for pod in pods(render(values)):
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        for c in pod["containers"]:
            assert c["securityContext"]["allowPrivilegeEscalation"] is False
            assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]


def test_defaults_are_a_self_contained_trial_install() -> None:
    docs = render({})
    cm = by_kind(docs, "ConfigMap")["dcflow-config"]["data"]
    assert set(CONFIG_MAP_KEYS) <= set(cm)
    assert cm["MLFLOW_TRACKING_URI"] == "http://dcflow-mlflow.kubeflow.svc:5000"
    assert cm["AWS_ENDPOINT_URL"] == "http://dcflow-minio.kubeflow.svc:9000"
    assert cm["DCFLOW_WEIGHTS_STORE"] == "s3://dcflow/weights"
    secret = by_kind(docs, "Secret")["dcflow-s3"]["data"]
    assert set(secret) == set(SECRET_KEYS)
    assert len(base64.b64decode(secret["AWS_SECRET_ACCESS_KEY"])) == 40  # generated, not a default
    assert {"dcflow-minio", "dcflow-mlflow"} <= set(by_kind(docs, "Deployment"))
    assert {"dcflow-minio", "dcflow-mlflow"} <= set(by_kind(docs, "Service"))
    assert "kfp-launcher" not in by_kind(docs, "ConfigMap")
    images = {c["image"] for pod in pods(docs) for c in pod["containers"]}
    assert "ghcr.io/dcflow/dcflow:0.1.0" in images


def test_custom_values_reach_config_and_upload_job() -> None:
    docs = render(CUSTOM)
    assert "Secret" not in {d["kind"] for d in docs}  # existingSecret: the chart writes none
    assert not {"dcflow-minio", "dcflow-mlflow"} & set(by_kind(docs, "Deployment"))
    cm = by_kind(docs, "ConfigMap")["ml-config"]["data"]
    assert cm["AWS_ENDPOINT_URL"] == "https://s3.example.org"
    assert cm["MLFLOW_TRACKING_URI"] == "http://mlflow.lab.svc:5000"
    assert cm["DCFLOW_IMAGE"] == "registry.example/dcflow:1.2.3-cuda"
    launcher = yaml.safe_load(by_kind(docs, "ConfigMap")["kfp-launcher"]["data"]["providers"])
    ref = launcher["s3"]["default"]["credentials"]["secretRef"]
    assert ref["secretName"] == "lab-s3-keys" and launcher["s3"]["default"]["disableSSL"] is False
    (job,) = [d for d in docs if d["kind"] == "Job"]
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    for arg in [
        "--method=aspc-da",
        "--image=registry.example/dcflow:1.2.3-cuda",
        "--gpus=2",
        "--config-map=ml-config",
        "--s3-secret=lab-s3-keys",
        "--pipeline-root=s3://lab/runs",
        "--node-selector=pool=gpu",
        "--toleration=nvidia.com/gpu:NoSchedule",
        "--toleration=dedicated=ml:NoExecute",
        "--upload",
        "--host=http://ml-pipeline.kubeflow:8888",
    ]:
        assert arg in command, arg


def test_upload_job_arguments_are_accepted_by_compile() -> None:
    """The Job's command line parses with compile.py's own parser (no drift between the two)."""
    import compile as compile_cli
    from dcflow_components._base import IMAGE

    (job,) = [d for d in render(CUSTOM) if d["kind"] == "Job"]
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[:3] == ["python", "-m", "dcflow_pipelines.compile"]
    args = compile_cli._parser(IMAGE).parse_args(command[3:])
    settings = compile_cli.settings_from_args(args)
    assert settings.node_selector == {"pool": "gpu"} and len(settings.tolerations) == 2


def test_missing_credentials_fail_with_a_clear_message() -> None:
    with pytest.raises(helm.HelmError, match="S3 credentials: set s3.existingSecret"):
        render({"minio": {"enabled": False}})
