"""Clustering methods, one module per method; importing this package registers them all."""

from dcflow.methods import aspc_da  # noqa: F401
