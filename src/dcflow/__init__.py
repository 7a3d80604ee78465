"""dcflow: robust deep clustering methods as Kubeflow pipelines.

The library under ``dcflow`` never imports kfp; the KFP layer lives in ``dcflow_components`` and
``dcflow_pipelines``.
"""

__version__ = "0.1.0"
