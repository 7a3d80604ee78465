"""MLflow tracking: the only package that imports mlflow.

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

from dcflow.tracking.pending import (
    PENDING_ENV,
    add_pending_metrics,
    flush_pending,
    log_or_defer,
    pending_dir,
)
from dcflow.tracking.reports import (
    download_file,
    log_comparison_run,
    log_sweep_run,
    pipeline_runs,
    stage_curves,
)
from dcflow.tracking.runs import (
    DEFAULT_DB,
    KFP_RUN_ENV,
    check_reachable,
    in_pod,
    log_metrics,
    log_pipeline_run,
    resolve_tracking_uri,
    ui_hint,
)

__all__ = [
    "DEFAULT_DB",
    "KFP_RUN_ENV",
    "PENDING_ENV",
    "add_pending_metrics",
    "check_reachable",
    "download_file",
    "flush_pending",
    "in_pod",
    "log_comparison_run",
    "log_metrics",
    "log_or_defer",
    "log_pipeline_run",
    "log_sweep_run",
    "pending_dir",
    "pipeline_runs",
    "resolve_tracking_uri",
    "stage_curves",
    "ui_hint",
]
