"""MLflow tracking: the only module that imports mlflow.

One parent run per pipeline run (tags method, dataset, seed, pipeline job id; params = the flattened
effective config; final metrics) with one child run per stage (its seconds, metrics and per-step
curves). The tracking URI comes from the argument, else ``MLFLOW_TRACKING_URI``, else a local sqlite
store ``./.dcflow/mlflow.db`` whose artifacts go to ``./.dcflow/mlartifacts`` (everything a local
run writes lives under ``.dcflow/``, which ``--runner docker`` mounts into the stage containers).

On a cluster (a Kubernetes pod) there is no local fallback: an empty tracking URI is an error, and
a failed MLflow log fails the evaluate task (KFP then retries it) instead of writing a pending
record that would vanish with the pod. When KFP's own MLflow integration gives the task a run
(``MLFLOW_RUN_ID``), the pipeline run is logged into that run's parent, the KFP run's MLflow run,
instead of a new unlinked parent.
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


def _experiment_id(client: Any, name: str, uri: str) -> str:
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
            exp_id = _experiment_id(client, experiment, uri)
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


def _client(tracking_uri: str) -> tuple[Any, str]:
    from mlflow.tracking import MlflowClient

    uri = resolve_tracking_uri(tracking_uri)
    check_reachable(uri)
    return MlflowClient(tracking_uri=uri), uri


def log_metrics(tracking_uri: str, run_id: str, metrics: dict[str, float]) -> None:
    """Add final metrics (e.g. ``wall_seconds``, known only after the pipeline) to a run."""
    from mlflow.entities import Metric

    client, uri = _client(tracking_uri)
    ts = int(time.time() * 1000)
    try:
        client.log_batch(run_id, metrics=[Metric(k, float(v), ts, 0) for k, v in metrics.items()])
    except Exception as exc:  # noqa: BLE001
        raise ServiceError(f"MLflow logging to {uri} failed: {str(exc)[:200]}") from None


def pipeline_runs(tracking_uri: str, experiment: str, comparison: str = "") -> list[dict[str, Any]]:
    """Finished pipeline (parent) runs of ``experiment``, optionally of one comparison only.

    Returns:
        One dict per run: ``run_id``, ``tags``, ``metrics`` (latest values), ``start_time``.
    """
    client, uri = _client(tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise ServiceError(f"MLflow at {uri} has no experiment {experiment!r}")
    query = "tags.`dcflow.kind` = 'pipeline'"
    if comparison:
        query += f" and tags.comparison = '{comparison}'"
    runs = client.search_runs([exp.experiment_id], filter_string=query, max_results=5000)
    return [
        {
            "run_id": r.info.run_id,
            "tags": dict(r.data.tags),
            "metrics": dict(r.data.metrics),
            "start_time": r.info.start_time,
        }
        for r in runs
    ]


def stage_curves(tracking_uri: str, parent_id: str) -> dict[str, dict[str, list[list[float]]]]:
    """Per-step curves of each stage (child run) of a run: ``{stage: {key: [[step, v]]}}``."""
    client, _ = _client(tracking_uri)
    exp_id = client.get_run(parent_id).info.experiment_id
    children = client.search_runs(
        [exp_id], filter_string=f"tags.mlflow.parentRunId = '{parent_id}'", max_results=100
    )
    out: dict[str, dict[str, list[list[float]]]] = {}
    for child in children:
        stage = child.data.tags.get("stage", child.info.run_name)
        for key in child.data.metrics:
            hist = client.get_metric_history(child.info.run_id, key)
            if len(hist) > 1:
                out.setdefault(stage, {})[key] = [[m.step, m.value] for m in hist]
    return out


def download_file(tracking_uri: str, run_id: str, name: str, dst: Path) -> Path | None:
    """Copy one artifact file of a run into ``dst`` (a directory); ``None`` when it is absent."""
    client, _ = _client(tracking_uri)
    if name not in {f.path for f in client.list_artifacts(run_id)}:
        return None
    dst.mkdir(parents=True, exist_ok=True)
    return Path(client.download_artifacts(run_id, name, str(dst)))


def log_comparison_run(
    tracking_uri: str, experiment: str, comparison: str, params: dict[str, str], files: list[Path]
) -> str:
    """One parent "comparison" run holding the report and its plots; returns its run id."""
    client, uri = _client(tracking_uri)
    exp_id = _experiment_id(client, experiment, uri)
    query = f"tags.`dcflow.kind` = 'comparison' and tags.comparison = '{comparison}'"
    for old in client.search_runs([exp_id], filter_string=query):
        client.delete_run(old.info.run_id)  # a rebuilt report replaces the previous one
    run = client.create_run(
        exp_id,
        run_name=f"comparison-{comparison}",
        tags={"dcflow.kind": "comparison", "comparison": comparison},
    )
    rid = run.info.run_id
    for k, v in params.items():
        client.log_param(rid, k, v[:6000])
    for f in files:
        client.log_artifact(rid, str(f), "plots" if f.suffix == ".png" else None)
    client.set_terminated(rid)
    return str(rid)


def log_sweep_run(
    tracking_uri: str, experiment: str, cfg: Any, choice: dict[str, Any], files: list[Path]
) -> str:
    """One ``sweep`` run: each internal score logged against K (as the step), the chosen K.

    Args:
        tracking_uri: MLflow.
        experiment: its experiment.
        cfg: the run config (method, dataset, seed become tags; the config becomes params).
        choice: :meth:`dcflow.clustering.choose_k.KChoice.to_dict`.
        files: ``sweep.json`` and the plot.

    Returns:
        The run id.
    """
    from mlflow.entities import Metric

    client, uri = _client(tracking_uri)
    try:
        exp_id = _experiment_id(client, experiment or "dcflow", uri)
        tags = {
            "dcflow.kind": "sweep",
            "method": cfg.method,
            "dataset": cfg.dataset.name,
            "seed": str(cfg.seed),
            "criterion": choice["criterion"],
            "chosen_k": str(choice["k"]),
            "mlflow.note.content": choice["reason"],
        }
        run = client.create_run(exp_id, run_name=f"sweep-k-{cfg.method}", tags=tags)
        rid = run.info.run_id
        ts = int(time.time() * 1000)
        batch = [
            Metric(name, float(value), ts, int(k))
            for k, scores in choice["table"].items()
            for name, value in scores.items()
        ]
        batch.append(Metric("chosen_k", float(choice["k"]), ts, 0))
        for i in range(0, len(batch), 900):
            client.log_batch(rid, metrics=batch[i : i + 900])
        for f in files:
            client.log_artifact(rid, str(f))
        client.set_terminated(rid)
    except Exception as exc:  # noqa: BLE001 - one line for the user
        raise ServiceError(f"MLflow logging to {uri} failed: {str(exc)[:200]}") from None
    return str(rid)


PENDING_ENV = "DCFLOW_MLFLOW_PENDING"


def pending_dir() -> Path:
    """Where runs that could not be logged wait for ``dcflow sync`` (``.dcflow/mlflow-pending``)."""
    return Path(os.environ.get(PENDING_ENV) or ".dcflow/mlflow-pending").resolve()


def log_or_defer(**record: Any) -> dict[str, str]:
    """:func:`log_pipeline_run`, or, when MLflow fails, keep the whole record for ``dcflow sync``.

    Nothing is lost when the server dies mid-run: the record (tags, params, metrics, stage reports
    with their curves, and the paths of the artifact files, which stay in the run's artifacts) is
    written atomically to :func:`pending_dir` and the run still succeeds, with a warning.

    Returns:
        The ids of the MLflow run, or ``pending`` (the record's path) and ``error``.
    """
    import json
    import uuid

    try:
        return log_pipeline_run(**record)
    except ServiceError as exc:
        if in_pod():  # a pending file would vanish with the pod: fail, so that KFP retries
            raise
        record = {**record, "tracking_uri": resolve_tracking_uri(record.get("tracking_uri", ""))}
        record["files"] = [str(Path(f).resolve()) for f in record.get("files", [])]
        folder = pending_dir()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{int(time.time())}-{uuid.uuid4().hex[:8]}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, default=str))
        os.replace(tmp, path)
        return {
            "tracking_uri": record["tracking_uri"],
            "experiment_id": "",
            "run_id": "",
            "pending": str(path),
            "error": str(exc),
        }


def add_pending_metrics(path: str, metrics: dict[str, float]) -> None:
    """Add metrics known only after the pipeline (``wall_seconds``) to a pending record."""
    import json

    p = Path(path)
    record = json.loads(p.read_text())
    record["metrics"] = {**record["metrics"], **metrics}
    tmp = p.with_suffix(".tmp")
    tmp.write_text(json.dumps(record))
    os.replace(tmp, p)


def flush_pending(tracking_uri: str = "") -> tuple[list[str], list[str]]:
    """Log every pending record (to its own URI, or ``tracking_uri`` when given).

    Returns:
        ``(logged run ids, records still pending with their error)``.
    """
    import json

    logged, left = [], []
    for path in sorted(pending_dir().glob("*.json")):
        record = json.loads(path.read_text())
        if tracking_uri:
            record["tracking_uri"] = tracking_uri
        try:
            ids = log_pipeline_run(**record)
        except ServiceError as exc:
            left.append(f"{path.name}: {exc}")
            continue
        path.unlink()
        logged.append(ids["run_id"])
    return logged, left
