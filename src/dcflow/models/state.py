"""Safe loading of weights files: ``torch.load(weights_only=True)`` and a state-dict check."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from dcflow.errors import WeightsError


def load_state(path: str | Path, what: str = "weights") -> dict[str, torch.Tensor]:
    """``torch.load(weights_only=True)`` onto the CPU; one-line error for what is not a state dict.

    Raises:
        WeightsError: missing file, unpicklable content, or not a dict of tensors.
    """
    if not Path(path).is_file():
        raise WeightsError(f"{what} {path} not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means bad weights
        raise WeightsError(f"cannot load {what} {path}: {type(exc).__name__}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{what} {path} are not a state dict of tensors")
    return state


def load_into(
    module: torch.nn.Module,
    source: str | Path | Mapping[str, torch.Tensor] | None,
    what: str,
    strict: bool = True,
    needed: str = "",
    misfit: str = "",
) -> tuple[list[str], list[str]]:
    """Load a weights file or a state dict into ``module``, one-line errors otherwise.

    Args:
        module: the freshly built network.
        source: the stage's verified weights file (``ctx.weights``), or a state dict handed over
            by an earlier stage (``init.model``); ``None`` when the stage received none.
        what: the network's name in the error message ("autoencoder", "CC network", ...).
        strict: ``load_state_dict``'s ``strict``.
        needed: the error when ``source`` is ``None`` (default: pretrained ``what`` weights).
        misfit: the error when the state dict does not fit ``module``.

    Returns:
        ``(missing_keys, unexpected_keys)`` (empty when ``strict``).

    Raises:
        WeightsError: no weights, not a state dict, or shapes/keys that do not fit ``module``.
    """
    if source is None:
        raise WeightsError(needed or f"this stage needs pretrained {what} weights")
    from_file = isinstance(source, (str, Path))
    state = load_state(source) if from_file else dict(source)  # type: ignore[arg-type]
    try:
        res = module.load_state_dict(state, strict=strict)
    except RuntimeError:
        default = f"{f'weights {source}' if from_file else what} do not fit the configured {what}"
        raise WeightsError(misfit or default) from None
    return list(res.missing_keys), list(res.unexpected_keys)
