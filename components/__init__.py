"""KFP components, one per stage; each is a thin wrapper around ``dcflow.stages``.

Top-level imports in these modules are stdlib and kfp only: the component bodies import dcflow at
run time inside the stage's own process (or container).
"""

from dcflow_components.cluster_init import cluster_init
from dcflow_components.cluster_init_job import cluster_init_job
from dcflow_components.confident_sample_selection import confident_sample_selection
from dcflow_components.download_weights import download_weights
from dcflow_components.evaluate import evaluate
from dcflow_components.predict import predict, predict_run
from dcflow_components.pretrain import pretrain
from dcflow_components.pretrain_job import pretrain_job
from dcflow_components.refine import refine
from dcflow_components.refine_job import refine_job
from dcflow_components.report import report
from dcflow_components.sweep import choose_k, plan_k, point_config, sweep_point
from dcflow_components.verify_weights import verify_weights

COMPONENTS = {
    "download-weights": download_weights,
    "verify-weights": verify_weights,
    "pretrain": pretrain,
    "pretrain-job": pretrain_job,
    "cluster-init": cluster_init,
    "cluster-init-job": cluster_init_job,
    "confident-sample-selection": confident_sample_selection,
    "refine": refine,
    "refine-job": refine_job,
    "evaluate": evaluate,
    "predict": predict,
    "predict-run": predict_run,
    "report": report,
    "plan-k": plan_k,
    "point-config": point_config,
    "sweep-point": sweep_point,
    "choose-k": choose_k,
}

__all__ = ["COMPONENTS", *sorted(k.replace("-", "_") for k in COMPONENTS)]
