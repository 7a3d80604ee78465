"""Runs kept on disk while MLflow is down, and ``dcflow sync``, which logs them later.

A pending record is written atomically (a temp name, then a rename); in a Kubernetes pod nothing is
kept, as the file would vanish with the pod: the failure fails the task so that KFP retries it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from dcflow.errors import ServiceError
from dcflow.tracking.runs import in_pod, log_pipeline_run, resolve_tracking_uri

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
