"""Safe loading of weights files: ``torch.load(weights_only=True)`` and a state-dict check."""

from __future__ import annotations

from pathlib import Path

import torch

from dcflow.errors import WeightsError


def load_state(path: str | Path) -> dict[str, torch.Tensor]:
    """``torch.load(weights_only=True)``; one-line error for files that are not state dicts."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means bad weights
        raise WeightsError(f"cannot load weights {path}: {type(exc).__name__}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"weights {path} are not a state dict of tensors")
    return state


def load_into(module: torch.nn.Module, path: str | Path | None, what: str,
              strict: bool = True) -> tuple[list[str], list[str]]:  # fmt: skip
    """Load the verified weights file ``path`` into ``module``, one-line errors otherwise.

    Args:
        module: the freshly built network.
        path: the stage's weights (``ctx.weights``); ``None`` when the stage received none.
        what: the network's name in the error message ("autoencoder", "CC network", ...).
        strict: ``load_state_dict``'s ``strict``.

    Returns:
        ``(missing_keys, unexpected_keys)`` (empty when ``strict``).

    Raises:
        WeightsError: no weights, not a state dict, or shapes/keys that do not fit ``module``.
    """
    if path is None:
        raise WeightsError(f"this stage needs pretrained {what} weights")
    try:
        res = module.load_state_dict(load_state(path), strict=strict)
    except RuntimeError:
        raise WeightsError(f"weights {path} do not fit the configured {what}") from None
    return list(res.missing_keys), list(res.unexpected_keys)
