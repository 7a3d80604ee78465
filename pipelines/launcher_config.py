"""Merge dcflow's S3 pipeline root into the namespace's ``kfp-launcher`` ConfigMap.

Usage::

    python -m dcflow_pipelines.launcher_config --namespace NS --pipeline-root s3://BUCKET/PREFIX
        [--endpoint http(s)://HOST[:PORT]] [--region REGION] --secret NAME [--name kfp-launcher]

Kubeflow Pipelines (>= 2.2) reads ``defaultPipelineRoot`` and ``providers`` from this ConfigMap;
KFP standalone already ships one, so the Helm chart (``kfpLauncher.enabled``) must not own it: its
post-install/post-upgrade hook Job runs this module, which sets those two keys only, keeps every
other key, and creates the ConfigMap only when it is absent. A second run changes nothing.
In a pod it uses the service account (RBAC: get, create, patch on configmaps), else the kube config.
Every failure ends in one line on stderr and exit code 1 (2 for a bad argument).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any
from urllib.parse import urlsplit

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from urllib3.exceptions import HTTPError

NAME = "kfp-launcher"
PROG = "launcher-config"
SECRET_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")  # as dcflow_pipelines.cluster


class LauncherError(Exception):
    """A failure a user can cause or fix (RBAC, no cluster, API down); printed as one line."""


class _NotFound(Exception):
    """The object does not exist (HTTP 404 on read)."""


class _Conflict(Exception):
    """The object exists already (HTTP 409 on create)."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse and check the command line (a bad value is a usage error, exit code 2)."""
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument("--namespace", required=True, help="namespace where KFP runs pipelines")
    p.add_argument("--pipeline-root", required=True, help="s3://BUCKET/PREFIX for artifacts")
    p.add_argument("--endpoint", default="", help="S3 endpoint URL ('' = AWS)")
    p.add_argument("--region", default="us-east-1", help="S3 region (default us-east-1)")
    p.add_argument("--secret", required=True, help="Secret with AWS_ACCESS_KEY_ID/..._SECRET_...")
    p.add_argument("--name", default=NAME, help=f"ConfigMap name (default {NAME})")
    args = p.parse_args(argv)
    bucket = args.pipeline_root.removeprefix("s3://").split("/")[0]
    if not args.pipeline_root.startswith("s3://") or not bucket:
        p.error(f"--pipeline-root wants s3://BUCKET[/PREFIX], not {args.pipeline_root!r}")
    url = urlsplit(args.endpoint)
    if args.endpoint and (url.scheme not in ("http", "https") or not url.netloc):
        p.error(f"--endpoint wants http(s)://HOST[:PORT], not {args.endpoint!r}")
    for flag in ("namespace", "secret", "name", "region"):
        if not getattr(args, flag):
            p.error(f"--{flag} must not be empty")
    return args


def providers_yaml(endpoint: str, region: str, secret: str) -> str:
    """The ``providers`` value: KFP's S3 settings, credentials from ``secret``."""
    default: dict[str, Any] = {}
    if endpoint:
        default["endpoint"] = urlsplit(endpoint).netloc  # host[:port], as KFP wants it
        default["disableSSL"] = endpoint.startswith("http://")
    default["region"] = region
    default["credentials"] = {
        "fromEnv": False,
        "secretRef": {
            "secretName": secret,
            "accessKeyKey": SECRET_KEYS[0],
            "secretKeyKey": SECRET_KEYS[1],
        },
    }
    return _yaml({"s3": {"default": default}})


def _yaml(tree: dict[str, Any], indent: int = 0) -> str:
    """Block YAML of nested dicts of str/bool (strings as JSON, a valid YAML double-quoted form)."""
    lines = []
    for key, value in tree.items():
        pad = " " * indent
        if isinstance(value, dict):
            lines.append(f"{pad}{key}:\n{_yaml(value, indent + 2)}")
        else:
            lines.append(f"{pad}{key}: {json.dumps(value)}")
    return "\n".join(lines) + ("\n" if indent == 0 else "")


def launcher_data(args: argparse.Namespace) -> dict[str, str]:
    """The two keys this module owns in the ConfigMap."""
    return {
        "defaultPipelineRoot": args.pipeline_root,
        "providers": providers_yaml(args.endpoint, args.region, args.secret),
    }


def changes(existing: dict[str, str] | None, ours: dict[str, str]) -> dict[str, str]:
    """The keys of ``ours`` whose value in ``existing`` differs (all of them when absent)."""
    existing = existing or {}
    return {k: v for k, v in ours.items() if existing.get(k) != v}


def merge(api: Any, namespace: str, name: str, ours: dict[str, str]) -> str:
    """Set ``ours`` in ConfigMap ``namespace/name`` (other keys kept); say what was done.

    ``api`` is a ``kubernetes.client.CoreV1Api`` (or a stand-in with the same three methods).
    A strategic merge patch of ``data`` touches only the keys it names.
    """
    where = f"{namespace}/{name}"
    existing = _read(api, namespace, name)
    if existing is None:
        body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name), data=dict(ours))
        try:
            _call(api.create_namespaced_config_map, "create", where, namespace=namespace, body=body)
            return f"created {where}"
        except _Conflict:  # created meanwhile (e.g. by KFP): merge into that one
            existing = _read(api, namespace, name) or {}
    todo = changes(existing, ours)
    if not todo:
        return f"unchanged {where}"
    _call(
        api.patch_namespaced_config_map,
        "patch",
        where,
        name=name,
        namespace=namespace,
        body={"data": todo},
    )
    return f"updated {', '.join(sorted(todo))} in {where}"


def _read(api: Any, namespace: str, name: str) -> dict[str, str] | None:
    """The ConfigMap's data, or None when it does not exist."""
    try:
        cm = _call(api.read_namespaced_config_map, "read", f"{namespace}/{name}", name, namespace)
    except _NotFound:
        return None
    return dict(cm.data or {})


def _call(method: Any, verb: str, where: str, *args: Any, **kwargs: Any) -> Any:
    """Call the API; map 404/409 to the exceptions above, anything else to one LauncherError."""
    try:
        return method(*args, **kwargs)
    except ApiException as exc:
        if exc.status == 404 and verb == "read":
            raise _NotFound from exc
        if exc.status == 409 and verb == "create":
            raise _Conflict from exc
        raise LauncherError(f"cannot {verb} ConfigMap {where}: {_api_message(exc)}") from exc
    except (HTTPError, OSError) as exc:
        raise LauncherError(
            f"cannot reach the Kubernetes API to {verb} {where}: {_first_line(exc)}"
        ) from exc


def _api_message(exc: ApiException) -> str:
    """``403 Forbidden: <the API server's message>`` on one line."""
    text = f"{exc.status} {exc.reason}".strip()
    try:
        message = json.loads(exc.body or "{}").get("message", "")
    except (ValueError, AttributeError):
        message = str(exc.body or "")
    return " ".join(f"{text}: {message}".split()) if message else text


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def core_api() -> Any:
    """A CoreV1Api from the pod's service account, else from the kube config."""
    try:
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config()
        else:
            config.load_kube_config()
    except (ConfigException, OSError) as exc:
        raise LauncherError(
            f"no Kubernetes configuration (in-cluster or kube config): {_first_line(exc)}"
        ) from exc
    return client.CoreV1Api()


def main(argv: list[str] | None = None, api: Any = None) -> int:
    """Command-line entry point; ``api`` replaces the real CoreV1Api (tests)."""
    args = parse_args(argv)
    try:
        done = merge(api or core_api(), args.namespace, args.name, launcher_data(args))
    except LauncherError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    print(f"{PROG}: {done}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
