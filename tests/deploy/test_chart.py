"""charts/dcflow: helm lint (strict) and render with default and non-default values, every rendered
manifest checked against the Kubernetes JSON schemas (strict: unknown fields fail)."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "dcflow"
KUBE = "1.30.0"

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
    "trainer": {"rbac": {"enabled": True}},
    "upload": {
        "kfpHost": "http://ml-pipeline.kubeflow:8888",
        "method": "aspc-da",
        "gpus": 2,
        "workers": 4,
        "gpusPerWorker": 8,
        "sharedPvc": "shared:/mnt/shared",
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


def command_of(job: dict[str, Any]) -> list[str]:
    return job["spec"]["template"]["spec"]["containers"][0]["command"]


def is_hook(doc: dict[str, Any]) -> bool:
    return "helm.sh/hook" in (doc["metadata"].get("annotations") or {})


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
    command = command_of(by_kind(docs, "Job")["dcflow-upload"])
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
    from dcflow_components._base import IMAGE
    from dcflow_pipelines import compile as compile_cli
    from dcflow_pipelines.cluster_args import settings_from_args

    command = command_of(by_kind(render(CUSTOM), "Job")["dcflow-upload"])
    assert command[:3] == ["python", "-m", "dcflow_pipelines.compile"]
    args = compile_cli._parser(IMAGE).parse_args(command[3:])
    settings = settings_from_args(args)
    assert settings.node_selector == {"pool": "gpu"} and len(settings.tolerations) == 2
    assert (settings.workers, settings.gpus_per_worker) == (4, 8)
    assert settings.shared_pvc is not None and settings.shared_pvc.name == "shared"


def test_trainer_rbac_lets_pipeline_pods_run_training_jobs() -> None:
    assert "dcflow-trainer" not in by_kind(render({}), "Role")
    docs = render(CUSTOM)
    role = by_kind(docs, "Role")["dcflow-trainer"]
    assert {(tuple(r["apiGroups"]), tuple(r["resources"])) for r in role["rules"]} == {
        (("trainer.kubeflow.org",), ("trainjobs",)),
        (("kubeflow.org",), ("pytorchjobs",)),
    }
    assert all(set(r["verbs"]) == {"create", "get", "delete"} for r in role["rules"])
    binding = by_kind(docs, "RoleBinding")["dcflow-trainer"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "pipeline-runner", "namespace": "kubeflow"}
    ]


def test_workers_without_a_shared_pvc_fail_to_render() -> None:
    with pytest.raises(helm.HelmError, match="upload.sharedPvc"):
        render({"upload": {"workers": 2}})


def test_missing_credentials_fail_with_a_clear_message() -> None:
    with pytest.raises(helm.HelmError, match="S3 credentials: set s3.existingSecret"):
        render({"minio": {"enabled": False}})


LAUNCHER = "dcflow-kfp-launcher"  # the hook Job, Role and RoleBinding of kfpLauncher.enabled


@pytest.mark.parametrize("values", [{}, CUSTOM], ids=["default", "custom"])
def test_the_chart_never_owns_kfp_launcher(values: dict[str, Any]) -> None:
    """KFP ships its own kfp-launcher ConfigMap: an owned one makes `helm install` fail."""
    docs = render(values)
    owned = [d for d in docs if not is_hook(d)]
    assert ("ConfigMap", "kfp-launcher") not in {(d["kind"], d["metadata"]["name"]) for d in owned}
    # nor does a hook create it as a whole (that fails the same way when KFP's exists)
    assert "kfp-launcher" not in by_kind(docs, "ConfigMap")


def test_kfp_launcher_hook_and_rbac_render_only_when_enabled() -> None:
    docs = render({})
    assert LAUNCHER not in by_kind(docs, "Job")
    assert not {"Role", "RoleBinding"} & {d["kind"] for d in docs}

    docs = render(CUSTOM)
    job = by_kind(docs, "Job")[LAUNCHER]
    hook = job["metadata"]["annotations"]
    assert hook["helm.sh/hook"] == "post-install,post-upgrade"
    assert int(hook["helm.sh/hook-weight"]) < 0  # before the upload Job (weight 0)
    pod = job["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "dcflow" and pod["automountServiceAccountToken"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["image"] == "registry.example/dcflow:1.2.3-cuda"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    command = command_of(job)
    assert command[:3] == ["python", "-m", "dcflow_pipelines.launcher_config"]
    for arg in [
        "--namespace=kubeflow",
        "--pipeline-root=s3://lab/runs",
        "--endpoint=https://s3.example.org",
        "--region=us-east-1",
        "--secret=lab-s3-keys",
    ]:
        assert arg in command, arg

    role = by_kind(docs, "Role")[LAUNCHER]
    verbs = {v for rule in role["rules"] for v in rule["verbs"]}
    assert verbs == {"get", "create", "patch"}
    for rule in role["rules"]:
        assert rule["apiGroups"] == [""] and rule["resources"] == ["configmaps"]
        if set(rule["verbs"]) & {"get", "patch"}:
            assert rule["resourceNames"] == ["kfp-launcher"]  # no other ConfigMap
    binding = by_kind(docs, "RoleBinding")[LAUNCHER]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": LAUNCHER,
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "dcflow", "namespace": "kubeflow"}
    ]
    assert not any(is_hook(d) for d in (role, binding))  # in place before the hook Job runs


def test_kfp_launcher_job_writes_what_the_old_template_wrote() -> None:
    """The Job's command line parses with launcher_config's parser into the same two keys."""
    from dcflow_pipelines import launcher_config

    args = launcher_config.parse_args(command_of(by_kind(render(CUSTOM), "Job")[LAUNCHER])[3:])
    data = launcher_config.launcher_data(args)
    assert data["defaultPipelineRoot"] == "s3://lab/runs"
    assert yaml.safe_load(data["providers"]) == {
        "s3": {
            "default": {
                "endpoint": "s3.example.org",
                "disableSSL": False,
                "region": "us-east-1",
                "credentials": {
                    "fromEnv": False,
                    "secretRef": {
                        "secretName": "lab-s3-keys",
                        "accessKeyKey": "AWS_ACCESS_KEY_ID",
                        "secretKeyKey": "AWS_SECRET_ACCESS_KEY",
                    },
                },
            }
        }
    }


def notes(values: dict[str, Any]) -> str:
    with helm.Chart.load(str(CHART)) as chart:
        files = chart.render(values, name="dcflow", namespace="kubeflow", is_install=True)
    return files["dcflow/templates/NOTES.txt"]


def test_existing_secret_is_the_one_name_everywhere() -> None:
    """Upload Job, kfp-launcher hook and NOTES' compile command all name s3.existingSecret."""
    values = {"s3": {"existingSecret": "my-secret"}, "kfpLauncher": {"enabled": True}}
    values["configMapName"] = "my-config"
    docs = render(values)
    assert "Secret" not in {d["kind"] for d in docs}
    jobs = by_kind(docs, "Job")
    upload = command_of(jobs["dcflow-upload"])
    assert "--s3-secret=my-secret" in upload and "--config-map=my-config" in upload
    assert "--secret=my-secret" in command_of(jobs[LAUNCHER])
    for pod in pods(docs):  # every pod that reads the S3 keys reads them from my-secret
        for env in [e for c in pod["containers"] for e in c.get("env", [])]:
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            assert ref is None or ref["name"] == "my-secret", env
    text = notes(values)
    assert "dcflow-s3" not in text
    (line,) = [line for line in text.splitlines() if "pipelines/compile.py" in line]
    assert "--s3-secret my-secret" in line and "--config-map my-config" in line
    assert "--pipeline-root s3://dcflow/runs" in line
    assert "kfp-launcher" in text
    from dcflow_components._base import IMAGE
    from dcflow_pipelines import (
        compile as compile_cli,  # the printed command parses with compile.py's own parser
    )
    from dcflow_pipelines.cluster_args import settings_from_args

    argv = line.split()[line.split().index("pipelines/compile.py") + 1 :]
    settings = settings_from_args(compile_cli._parser(IMAGE).parse_args(argv))
    assert (settings.secret, settings.config_map) == ("my-secret", "my-config")


def test_default_notes_name_the_chart_secret() -> None:
    text = notes({})
    (line,) = [line for line in text.splitlines() if "pipelines/compile.py" in line]
    assert "--s3-secret dcflow-s3" in line and "--config-map dcflow-config" in line
    assert "--pipeline-root" not in line and "kfp-launcher" not in text


def test_deploy_guide_compile_commands_name_the_existing_secret() -> None:
    """Where the deploy guide installs with s3.existingSecret=X, its text passes X to compile."""
    deploy = (ROOT / "docs" / "deploy.md").read_text()
    secrets = set(re.findall(r"s3\.existingSecret=([\w.-]+)", deploy))
    assert secrets
    for name in secrets:
        assert f"--s3-secret {name}" in deploy, name


def test_upload_job_passes_image_pull_secrets_to_the_pipelines() -> None:
    docs = render({"imagePullSecrets": [{"name": "regcred"}, {"name": "other"}]})
    job = next(d for d in docs if d["kind"] == "Job" and d["metadata"]["name"].endswith("-upload"))
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    assert "--image-pull-secret=regcred" in command and "--image-pull-secret=other" in command
