"""The dataset registry: name -> loader returning ``(x, y or None, n_train or None)``.

Built-in datasets register in :mod:`dcflow.data.builtin`; ``npz:PATH`` and ``s3://`` sources are
resolved without a registry entry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from dcflow.errors import ConfigError

F = TypeVar("F", bound=Callable[..., Any])

_DATASETS: dict[str, tuple[Callable[..., Any], str]] = {}


def register_dataset(name: str, description: str) -> Callable[[F], F]:
    """Function decorator: register a dataset loader under ``name``."""

    def wrap(fn: F) -> F:
        _DATASETS[name] = (fn, description)
        return fn

    return wrap


def get_dataset_loader(name: str) -> Callable[..., Any]:
    """Look up a dataset loader by name."""
    import dcflow.data.builtin  # noqa: F401  (fills the registry)

    if name not in _DATASETS:
        known = ", ".join(sorted(_DATASETS))
        raise ConfigError(f"unknown dataset {name!r}; known datasets: {known}, or npz:PATH")
    return _DATASETS[name][0]


def dataset_descriptions() -> dict[str, str]:
    """Registered dataset names with their one-line descriptions."""
    import dcflow.data.builtin  # noqa: F401

    return {name: desc for name, (_, desc) in sorted(_DATASETS.items())}
