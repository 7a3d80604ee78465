"""Pipeline runs in MLflow: the tracking URI, the parent run and one child run per stage.

See :mod:`dcflow.tracking` for the layout of the runs and the cluster rules.
"""

from __future__ import annotations

import os
import time
import urllib.request
from pathlib import Path
from typing import Any

from dcflow.errors import ServiceError

DEFAULT_DB = ".dcflow/mlflow.db"


def in_pod() -> bool:
    """Whether this process runs in a Kubernetes pod (every pod has this variable)."""
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST"))


def resolve_tracking_uri(uri: str = "") -> str:
    """Explicit URI, else ``$MLFLOW_TRACKING_URI``, else ``sqlite:///<cwd>/.dcflow/mlflow.db``.

    Raises:
        ServiceError: no URI in a pod, where a local store would vanish with the pod.
    """
    if uri:
        return uri
    env = os.environ.get("MLFLOW_TRACKING_URI", "")
    if not env and in_pod():
        raise ServiceError(
            "no MLflow tracking URI in this pod: set MLFLOW_TRACKING_URI (the chart's "
            "dcflow-config ConfigMap) or the pipeline's tracking_uri parameter"
        )
    if env:
        return env
    db = Path(DEFAULT_DB).resolve()
    db.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{db}"


def ui_hint(uri: str) -> str:
    """The command that opens the MLflow UI on a local store."""
    if uri.startswith("sqlite:///"):
        return f"mlflow ui --backend-store-uri {uri} --port 5000"
    return f"open {uri} in a browser"


def check_reachable(uri: str, timeout: float = 5.0) -> None:
    """Fail fast with one line when an HTTP tracking server does not answer ``/health``."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as resp:
            if resp.status >= 400:
                raise ServiceError(f"MLflow server {uri} answered HTTP {resp.status}")
    except OSError as exc:
        raise ServiceError(f"MLflow server {uri} is unreachable: {exc}") from None


def experiment_id_for(client: Any, name: str, uri: str) -> str:
    """The id of experiment ``name``, created (with its artifact folder) when it is new.

    A local sqlite store keeps its artifacts in the ``mlartifacts`` folder beside the database.
    """
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return str(exp.experiment_id)
    location = None
    if uri.startswith("sqlite:///"):
        folder = Path(uri[len("sqlite:///") :]).parent
        folder = folder if folder.name == ".dcflow" else folder / ".dcflow"
        location = (folder / "mlartifacts").resolve().as_uri()
    # MLflow 3's UI opens an experiment as model training, not GenAI, with this tag
    kind = {"mlflow.experimentKind": "custom_model_development"}
    return str(client.create_experiment(name, artifact_location=location, tags=kind))


def _log_curves(client: Any, run_id: str, curves: dict[str, list[list[float]]], ts: int) -> None:
    from mlflow.entities import Metric

    batch = [Metric(key, float(v), ts, int(step)) for key, pts in curves.items() for step, v in pts]
    for i in range(0, len(batch), 900):
        client.log_batch(run_id, metrics=batch[i : i + 900])


def log_pipeline_run(
    tracking_uri: str,
    experiment: str,
    run_name: str,
    tags: dict[str, str],
    params: dict[str, Any],
    metrics: dict[str, float],
    stage_reports: list[dict[str, Any]],
    files: list[Path],
) -> dict[str, str]:
    """Log a finished pipeline run: parent run plus one child run per stage report.

    Returns:
        ``{"tracking_uri", "experiment_id", "run_id"}`` of the parent run.
    """
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    uri = resolve_tracking_uri(tracking_uri)
    check_reachable(uri)
    try:
        client = MlflowClient(tracking_uri=uri)
        start = int(min(r.get("started", 0) for r in stage_reports) * 1000) or None
        kfp_parent = _kfp_parent_run(client)
        if kfp_parent is not None:  # KFP's MLflow integration owns the run: log into it
            exp_id, pid = kfp_parent
            client.set_tag(pid, "dcflow.kind", "pipeline")
            for key, value in tags.items():
                client.set_tag(pid, key, value)
        else:
            exp_id = experiment_id_for(client, experiment, uri)
            parent = client.create_run(
                exp_id,
                start_time=start,
                run_name=run_name,
                tags={**tags, "dcflow.kind": "pipeline"},
            )
            pid = parent.info.run_id
        ps = [Param(k, str(v)[:6000]) for k, v in params.items()]
        for i in range(0, len(ps), 90):
            client.log_batch(pid, params=ps[i : i + 90])
        ts = int(max(r.get("ended", 0) for r in stage_reports) * 1000)
        stage_seconds = {
            f"seconds_{r['stage'].replace('-', '_')}": r["seconds"] for r in stage_reports
        }
        client.log_batch(
            pid,
            metrics=[Metric(k, float(v), ts, 0) for k, v in {**metrics, **stage_seconds}.items()],
        )
        for r in stage_reports:
            _log_stage(client, exp_id, pid, r, tags)
        for f in files:
            if Path(f).is_file():
                client.log_artifact(pid, str(f))
        if kfp_parent is None:  # KFP closes the runs of its own integration
            client.set_terminated(pid, end_time=ts)
    except ServiceError:
        raise
    except Exception as exc:  # noqa: BLE001 - any MLflow/network failure is one line for the user
        raise ServiceError(
            f"MLflow logging to {uri} failed: {type(exc).__name__}: {str(exc)[:200]}"
        ) from None
    return {"tracking_uri": uri, "experiment_id": exp_id, "run_id": pid}


KFP_RUN_ENV = "MLFLOW_RUN_ID"


def _kfp_parent_run(client: Any) -> tuple[str, str] | None:
    """``(experiment id, run id)`` of the KFP run's MLflow run, when KFP's integration made one.

    KFP's MLflow integration (KEP-12862) gives every task container ``MLFLOW_RUN_ID``, a run
    nested under the MLflow run of the whole KFP run; dcflow's pipeline run is that parent.
    """
    task_run = os.environ.get(KFP_RUN_ENV, "")
    if not task_run:
        return None
    run = client.get_run(task_run)
    parent = run.data.tags.get("mlflow.parentRunId") or task_run
    return str(run.info.experiment_id), parent


def _log_stage(
    client: Any, exp_id: str, parent_id: str, r: dict[str, Any], tags: dict[str, str]
) -> None:
    from mlflow.entities import Metric

    child = client.create_run(
        exp_id,
        start_time=int(r["started"] * 1000),
        run_name=r["stage"],
        tags={
            **tags,
            "mlflow.parentRunId": parent_id,
            "stage": r["stage"],
            "skipped": str(r["skipped"]),
            "dcflow.kind": "stage",
        },
    )
    cid, ts = child.info.run_id, int(r["ended"] * 1000)
    values = {"seconds": r["seconds"], **r.get("metrics", {})}
    client.log_batch(cid, metrics=[Metric(k, float(v), ts, 0) for k, v in values.items()])
    _log_curves(client, cid, r.get("curves", {}), ts)
    client.set_terminated(cid, end_time=ts)


def open_client(tracking_uri: str) -> tuple[Any, str]:
    """An ``MlflowClient`` on the resolved tracking URI, after checking that it answers."""
    from mlflow.tracking import MlflowClient

    uri = resolve_tracking_uri(tracking_uri)
    check_reachable(uri)
    return MlflowClient(tracking_uri=uri), uri


def log_metrics(tracking_uri: str, run_id: str, metrics: dict[str, float]) -> None:
    """Add final metrics (e.g. ``wall_seconds``, known only after the pipeline) to a run."""
    from mlflow.entities import Metric

    client, uri = open_client(tracking_uri)
    ts = int(time.time() * 1000)
    try:
        client.log_batch(run_id, metrics=[Metric(k, float(v), ts, 0) for k, v in metrics.items()])
    except Exception as exc:  # noqa: BLE001
        raise ServiceError(f"MLflow logging to {uri} failed: {str(exc)[:200]}") from None
