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
