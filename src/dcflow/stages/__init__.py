"""Runtime-agnostic stage entry points: config JSON + artifact paths in, reports out.

Import the submodule you need (``weights``, ``hooks``, ``evaluate``): each stage process should pay
only for its own imports. Nothing here imports kfp; ``dcflow_components`` wraps these functions.
"""
