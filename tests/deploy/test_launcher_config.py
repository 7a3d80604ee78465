"""pipelines/launcher_config.py: merging dcflow's pipeline root into KFP's kfp-launcher ConfigMap,
against a fake CoreV1Api (no cluster)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from dcflow_pipelines import launcher_config
from kubernetes.client import V1ConfigMap, V1ObjectMeta
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import MaxRetryError

NS = "kubeflow"
ARGV = [
    "--namespace",
    NS,
    "--pipeline-root",
    "s3://dcflow/runs",
    "--endpoint",
    "http://dcflow-minio:9000",
    "--region",
    "us-east-1",
    "--secret",
    "my-secret",
]


class FakeCoreV1:
    """The three CoreV1Api calls the module makes; patch merges ``data`` like the API server."""

    def __init__(self, maps: dict[str, dict[str, str]] | None = None) -> None:
        self.maps = {name: dict(data) for name, data in (maps or {}).items()}
        self.created: list[V1ConfigMap] = []
        self.patches: list[dict[str, Any]] = []
        self.fail: dict[str, Exception] = {}  # method name -> exception it raises

    def _maybe_fail(self, method: str) -> None:
        if method in self.fail:
            raise self.fail[method]

    def read_namespaced_config_map(self, name: str, namespace: str) -> V1ConfigMap:
        self._maybe_fail("read")
        assert namespace == NS
        if name not in self.maps:
            raise ApiException(status=404, reason="Not Found")
        return V1ConfigMap(metadata=V1ObjectMeta(name=name), data=dict(self.maps[name]))

    def create_namespaced_config_map(self, namespace: str, body: V1ConfigMap) -> V1ConfigMap:
        self._maybe_fail("create")
        assert namespace == NS
        if body.metadata.name in self.maps:
            raise ApiException(status=409, reason="Conflict")
        self.created.append(body)
        self.maps[body.metadata.name] = dict(body.data)
        return body

    def patch_namespaced_config_map(
        self, name: str, namespace: str, body: dict[str, Any]
    ) -> V1ConfigMap:
        self._maybe_fail("patch")
        assert namespace == NS
        self.patches.append(body)
        self.maps[name].update(body["data"])  # strategic merge patch of a map: keys merged
        return V1ConfigMap(metadata=V1ObjectMeta(name=name), data=dict(self.maps[name]))


def ours() -> dict[str, str]:
    return launcher_config.launcher_data(launcher_config.parse_args(ARGV))


def test_existing_map_keeps_other_keys_and_updates_ours(capsys: pytest.CaptureFixture[str]) -> None:
    api = FakeCoreV1(
        {
            "kfp-launcher": {
                "defaultPipelineRoot": "minio://mlpipeline/v2/artifacts",
                "providers": "gs: {}",
                "otherKey": "kept",
            },
            "unrelated": {"a": "b"},
        }
    )
    assert launcher_config.main(ARGV, api=api) == 0
    assert api.created == []
    (patch,) = api.patches
    assert set(patch["data"]) == {"defaultPipelineRoot", "providers"}  # only our two keys
    assert api.maps["kfp-launcher"] == {**ours(), "otherKey": "kept"}
    assert api.maps["unrelated"] == {"a": "b"}
    out = capsys.readouterr().out
    assert (
        out.strip()
        == "launcher-config: updated defaultPipelineRoot, providers in kubeflow/kfp-launcher"
    )


def test_missing_map_is_created_with_our_keys_only(capsys: pytest.CaptureFixture[str]) -> None:
    api = FakeCoreV1()
    assert launcher_config.main(ARGV, api=api) == 0
    (body,) = api.created
    assert body.metadata.name == "kfp-launcher"
    assert api.maps["kfp-launcher"] == ours() and api.patches == []
    assert "created kubeflow/kfp-launcher" in capsys.readouterr().out


def test_a_second_run_changes_nothing() -> None:
    api = FakeCoreV1({"kfp-launcher": {**ours(), "x": "y"}})
    assert launcher_config.main(ARGV, api=api) == 0
    assert api.patches == [] and api.created == []


def test_only_changed_keys_are_patched() -> None:
    api = FakeCoreV1({"kfp-launcher": {**ours(), "defaultPipelineRoot": "s3://old/root"}})
    assert launcher_config.main(ARGV, api=api) == 0
    assert api.patches == [{"data": {"defaultPipelineRoot": "s3://dcflow/runs"}}]


def test_created_meanwhile_is_merged_not_overwritten() -> None:
    """KFP creating the map between our read and create: a 409, then a merge into its map."""
    api = FakeCoreV1()
    real_create = api.create_namespaced_config_map

    def racing_create(namespace: str, body: V1ConfigMap) -> V1ConfigMap:
        api.maps["kfp-launcher"] = {"otherKey": "kept"}
        return real_create(namespace, body)

    api.create_namespaced_config_map = racing_create  # type: ignore[method-assign]
    assert launcher_config.main(ARGV, api=api) == 0
    assert api.maps["kfp-launcher"] == {**ours(), "otherKey": "kept"}


@pytest.mark.parametrize("method", ["read", "create", "patch"])
def test_api_error_is_one_clear_line_and_non_zero(
    method: str, capsys: pytest.CaptureFixture[str]
) -> None:
    api = FakeCoreV1({} if method == "create" else {"kfp-launcher": {"x": "y"}})
    err = ApiException(status=403, reason="Forbidden")
    err.body = json.dumps({"kind": "Status", "message": 'configmaps "kfp-launcher" is forbidden'})
    api.fail[method] = err
    assert launcher_config.main(ARGV, api=api) == 1
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("launcher-config: error: ")
    assert "kubeflow/kfp-launcher" in lines[0] and "403" in lines[0]
    assert 'configmaps "kfp-launcher" is forbidden' in lines[0]
    assert "Traceback" not in captured.err


def test_unreachable_api_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    api = FakeCoreV1()
    api.fail["read"] = MaxRetryError(None, "/api/v1/namespaces/kubeflow/configmaps/kfp-launcher")
    assert launcher_config.main(ARGV, api=api) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("launcher-config: error: ") and "Kubernetes API" in line


def test_no_cluster_configuration_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    assert launcher_config.main(ARGV) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("launcher-config: error: ") and "configuration" in line


def test_providers_match_kfp_launcher_format() -> None:
    data = ours()
    assert data["defaultPipelineRoot"] == "s3://dcflow/runs"
    default = yaml.safe_load(data["providers"])["s3"]["default"]
    assert default["endpoint"] == "dcflow-minio:9000" and default["disableSSL"] is True
    assert default["region"] == "us-east-1"
    assert default["credentials"] == {
        "fromEnv": False,
        "secretRef": {
            "secretName": "my-secret",
            "accessKeyKey": "AWS_ACCESS_KEY_ID",
            "secretKeyKey": "AWS_SECRET_ACCESS_KEY",
        },
    }


def test_without_endpoint_aws_is_used() -> None:
    argv = ["--namespace", NS, "--pipeline-root", "s3://b/p", "--secret", "s", "--endpoint", ""]
    default = yaml.safe_load(
        launcher_config.launcher_data(launcher_config.parse_args(argv))["providers"]
    )
    assert (
        "endpoint" not in default["s3"]["default"] and "disableSSL" not in default["s3"]["default"]
    )


@pytest.mark.parametrize(
    "bad",
    [
        ["--pipeline-root", "minio://b/p"],
        ["--pipeline-root", "s3://"],
        ["--endpoint", "ftp://host"],
        ["--endpoint", "http://"],
        ["--secret", ""],
    ],
)
def test_bad_arguments_are_usage_errors(bad: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    argv = list(ARGV)
    for flag, value in zip(bad[::2], bad[1::2], strict=True):
        argv[argv.index(flag) + 1] = value
    with pytest.raises(SystemExit) as exc:
        launcher_config.parse_args(argv)
    assert exc.value.code == 2
    assert bad[0] in capsys.readouterr().err
