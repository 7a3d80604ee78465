"""Runtime-agnostic stage entry points, one file per stage: config JSON + artifact paths in.

``download_weights``, ``pretrain`` (and its cached branch ``verify_cached``), ``cluster_init``,
``confident_sample_selection``, ``refine`` and ``evaluate``; ``runner.open_stage`` is what they
share. Import the submodule you need: each stage process should pay only for its own imports.
Nothing here imports kfp; ``dcflow_components`` wraps these functions.
"""
