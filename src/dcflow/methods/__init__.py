"""Clustering methods, one module per method; importing this package registers them all.

Extra methods from outside dcflow register themselves when their module is named in
``$DCFLOW_PLUGINS`` (comma-separated module names, importable in every stage's process).
"""

import importlib
import os

from dcflow.errors import ConfigError
from dcflow.methods import aspc_da, cc, hadis, propos, ruc, scan, self_cc, uldc  # noqa: F401

PLUGINS_ENV = "DCFLOW_PLUGINS"


def _load_plugins() -> None:
    for name in filter(None, (s.strip() for s in os.environ.get(PLUGINS_ENV, "").split(","))):
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ConfigError(f"{PLUGINS_ENV}: cannot import {name!r}: {exc}") from None


_load_plugins()
