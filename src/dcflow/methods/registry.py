"""The method registry: name -> :class:`~dcflow.methods.base.Method` subclass.

Methods register with ``@register_method``; importing :mod:`dcflow.methods` registers the built-in
ones and the plugins named in ``$DCFLOW_PLUGINS``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from dcflow.errors import ConfigError

if TYPE_CHECKING:
    from dcflow.methods.base import Method

M = TypeVar("M", bound="type[Method]")

_METHODS: dict[str, type[Method]] = {}


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
