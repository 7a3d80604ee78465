"""Name -> class/function registries for methods and datasets.

Methods register with ``@register_method``; importing :mod:`dcflow.methods` fills the registry.
Datasets register with ``@register_dataset``; ``npz:PATH`` is resolved without a registry entry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from dcflow.errors import ConfigError

if TYPE_CHECKING:
    from dcflow.methods.base import Method

M = TypeVar("M", bound="type[Method]")
F = TypeVar("F", bound=Callable[..., Any])

_METHODS: dict[str, type[Method]] = {}
_DATASETS: dict[str, tuple[Callable[..., Any], str]] = {}


def register_method(cls: M) -> M:
    """Class decorator: make a :class:`~dcflow.methods.base.Method` available by its ``name``."""
    _METHODS[cls.name] = cls
    return cls


def get_method(name: str) -> type[Method]:
    """Look up a method class by name, with a one-line error listing the known ones."""
    import dcflow.methods  # noqa: F401  (fills the registry)

    if name not in _METHODS:
        known = ", ".join(sorted(_METHODS))
        raise ConfigError(f"unknown method {name!r}; known methods: {known}")
    return _METHODS[name]


def method_names() -> list[str]:
    """Registered method names, sorted."""
    import dcflow.methods  # noqa: F401

    return sorted(_METHODS)


def register_dataset(name: str, description: str) -> Callable[[F], F]:
    """Function decorator: register a dataset loader under ``name``."""

    def wrap(fn: F) -> F:
        _DATASETS[name] = (fn, description)
        return fn

    return wrap


def get_dataset_loader(name: str) -> Callable[..., Any]:
    """Look up a dataset loader by name."""
    import dcflow.data.builtin  # noqa: F401

    if name not in _DATASETS:
        known = ", ".join(sorted(_DATASETS))
        raise ConfigError(f"unknown dataset {name!r}; known datasets: {known}, or npz:PATH")
    return _DATASETS[name][0]


def dataset_descriptions() -> dict[str, str]:
    """Registered dataset names with their one-line descriptions."""
    import dcflow.data.builtin  # noqa: F401

    return {name: desc for name, (_, desc) in sorted(_DATASETS.items())}
