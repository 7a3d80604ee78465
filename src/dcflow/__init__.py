"""dcflow: robust deep clustering methods as Kubeflow pipelines.

The library under ``dcflow`` never imports kfp; the KFP layer lives in ``dcflow_components`` and
``dcflow_pipelines``. From Python, :func:`dcflow.cluster` (:mod:`dcflow.api`) and
:class:`dcflow.DeepClusterer` (:mod:`dcflow.estimator`) run the pipeline of ``dcflow run``; they
are imported on first use, so that ``import dcflow`` stays cheap (no torch, no kfp).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dcflow.api import ClusterResult, cluster
    from dcflow.estimator import DeepClusterer

__version__ = "0.1.0"
__all__ = ["ClusterResult", "DeepClusterer", "cluster"]


def __getattr__(name: str) -> Any:
    """``dcflow.cluster``, ``dcflow.DeepClusterer``, ``dcflow.ClusterResult``, loaded lazily."""
    if name == "DeepClusterer":
        from dcflow.estimator import DeepClusterer

        return DeepClusterer
    if name in __all__:
        from dcflow import api

        return getattr(api, name)
    raise AttributeError(f"module 'dcflow' has no attribute {name!r}")
