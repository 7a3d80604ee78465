"""Upload or submit compiled pipeline YAMLs to a Kubeflow Pipelines API with the standard client.

Authentication is the client's own: ``--existing-token`` (or a token file mounted at
``$KF_PIPELINES_SA_TOKEN_PATH``, which the client reads itself), ``--cookies``, ``--client-id`` /
``--other-client-id`` / ``--other-client-secret`` (IAP), ``--ssl-ca-cert`` and ``--proxy``.
Failures end in one line that names the host and never echoes a token or a cookie.
``--no-cache`` is baked into the compiled package (``ClusterSettings.caching``), so an uploaded
pipeline runs uncached too, and is passed to the run as ``enable_caching=False``.
"""

from __future__ import annotations

import argparse
import os
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from dcflow.errors import ServiceError

AUTH_OPTIONS = ("existing_token", "cookies", "client_id", "other_client_id", "other_client_secret")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``--submit`` options of ``compile.py``."""
    g = parser.add_argument_group("upload to / submit to Kubeflow Pipelines")
    g.add_argument("--submit", action="store_true", help="run the compiled pipeline on --host")
    g.add_argument(
        "--upload",
        action="store_true",
        help="upload the compiled pipelines to --host (a new version when one exists)",
    )
    g.add_argument(
        "--no-cache",
        action="store_true",
        help="no KFP caching: every stage of the compiled, uploaded or submitted pipeline "
        "(nested ones too) runs afresh; by default download-weights and pretrain are cached",
    )
    g.add_argument("--host", help="KFP API endpoint, e.g. http://127.0.0.1:8080")
    g.add_argument("--experiment", default="dcflow", help="KFP experiment (default dcflow)")
    g.add_argument("--run-name", help="run name (default dcflow-<method>-<time>)")
    g.add_argument("--namespace", help="KFP namespace (multi-user deployments)")
    g.add_argument(
        "--param",
        dest="params",
        action="append",
        default=[],
        metavar="K=V",
        help="pipeline parameter, e.g. --param weights_store=s3://b/w (repeatable)",
    )
    g.add_argument("--existing-token", help="bearer token for the KFP API")
    g.add_argument("--cookies", help="cookies for the KFP API (e.g. an auth session)")
    g.add_argument("--client-id", help="OAuth client id (IAP-protected endpoints)")
    g.add_argument("--other-client-id", help="OAuth client id of a desktop app (IAP)")
    g.add_argument("--other-client-secret", help="OAuth client secret of that app (IAP)")
    g.add_argument("--ssl-ca-cert", help="CA bundle for a TLS endpoint")
    g.add_argument("--proxy", help="HTTP proxy URL")


def parse_params(items: list[str]) -> dict[str, str]:
    """``["k=v", ...]`` -> ``{"k": "v"}`` (every dcflow pipeline parameter is a string)."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--param wants K=V, got {item!r}")
        out[key] = value
    return out


def _describe(exc: Exception) -> str:
    """One line for a client failure: HTTP status for refusals, the cause for connection errors."""
    status = getattr(exc, "status", None) or getattr(exc, "code", None)
    if isinstance(status, int) and status:
        reason = getattr(exc, "reason", "") or ""
        return f"refused the request: HTTP {status} {reason}".rstrip()
    cause = getattr(exc, "reason", None) or exc
    text = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
    network = isinstance(exc, OSError) or type(exc).__module__.startswith("urllib3")
    return f"{'is unreachable' if network else 'failed'}: {type(cause).__name__}: {text[:200]}"


def probe(args: argparse.Namespace, timeout: float = 10.0) -> None:
    """One GET of the KFP health endpoint, so an unreachable or refusing host fails in seconds.

    (The client itself retries a refused health check five times, 5 s apart.) Skipped for IAP
    logins (``--client-id``), whose token only the client can mint.
    """
    if args.client_id or args.other_client_id:
        return
    req = urllib.request.Request(args.host.rstrip("/") + "/apis/v2beta1/healthz")
    token = args.existing_token
    token_path = os.environ.get("KF_PIPELINES_SA_TOKEN_PATH", "")
    if not token and token_path and Path(token_path).is_file():
        token = Path(token_path).read_text().strip()
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if args.cookies:
        req.add_header("Cookie", args.cookies)
    context = ssl.create_default_context(cafile=args.ssl_ca_cert) if args.ssl_ca_cert else None
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context):
            pass
    except urllib.error.HTTPError as exc:
        raise ServiceError(f"KFP host {args.host} {_describe(exc)}") from None
    except OSError as exc:
        raise ServiceError(f"KFP host {args.host} {_describe(exc)}") from None


def _client(args: argparse.Namespace) -> Any:
    import warnings

    import kfp

    warnings.filterwarnings("ignore", category=FutureWarning, module="kfp.client")
    auth: dict[str, Any] = {k: getattr(args, k) for k in AUTH_OPTIONS if getattr(args, k)}
    return kfp.Client(
        host=args.host,
        namespace=args.namespace or "kubeflow",
        ssl_ca_cert=args.ssl_ca_cert,
        proxy=args.proxy,
        **auth,
    )


def submit(package: Path, args: argparse.Namespace) -> tuple[str, str]:
    """Create (or reuse) the experiment and start a run of ``package``.

    Returns:
        ``(run_id, experiment_id)``.

    Raises:
        ValueError: a malformed ``--param``.
        ServiceError: the host is unreachable or refuses (one line, no credential in it).
    """
    arguments = parse_params(args.params)
    probe(args)
    try:
        client = _client(args)
        result = client.create_run_from_pipeline_package(
            str(package),
            arguments=arguments,
            run_name=args.run_name or f"dcflow-{package.stem}-{time.strftime('%Y%m%d-%H%M%S')}",
            experiment_name=args.experiment,
            namespace=args.namespace,
            # None keeps each task's own setting; the package itself already has caching off
            # for every task under --no-cache (the client's override reaches only root tasks)
            enable_caching=False if args.no_cache else None,
        )
        run_id = str(result.run_id)
        experiment_id = str(getattr(result.run_info, "experiment_id", "") or "")
    except Exception as exc:  # noqa: BLE001 - any client/HTTP failure becomes one line
        raise ServiceError(f"KFP host {args.host} {_describe(exc)}") from None
    return run_id, experiment_id


def upload(packages: list[Path], args: argparse.Namespace, version: str) -> list[str]:
    """Upload each package as pipeline ``dcflow-<method>``, or as a new version when it exists.

    Returns:
        One line per package saying what was created.

    Raises:
        ServiceError: the host is unreachable or refuses.
    """
    probe(args)
    done = []
    try:
        client = _client(args)
        for package in packages:
            name = f"dcflow-{package.stem}"
            pipeline_id = client.get_pipeline_id(name)
            if pipeline_id is None:
                made = client.upload_pipeline(str(package), pipeline_name=name)
                done.append(f"uploaded pipeline {name} ({made.pipeline_id})")
            else:
                label = f"{name}-{version}"
                client.upload_pipeline_version(
                    str(package), pipeline_version_name=label, pipeline_id=pipeline_id
                )
                done.append(f"uploaded version {label} of pipeline {name} ({pipeline_id})")
    except Exception as exc:  # noqa: BLE001 - any client/HTTP failure becomes one line
        raise ServiceError(f"KFP host {args.host} {_describe(exc)}") from None
    return done
