"""Where a preset departs from the paper, and which labels chose it (``configs/<m>/tuning.yaml``).

Each method's ``tuning.yaml`` lists, per dataset, every preset setting that differs from the
method's defaults (the paper's settings), with the paper's value, its kind and the dataset whose
labels chose it::

    usps:
      refine.assign: {paper: head, kind: option, chosen_on: usps, why: "..."}

``kind: option`` entries are what ``dcflow compare --options off`` switches back to the paper's
value (the options-off row); ``kind: scale`` entries (CPU-scale budgets and architectures) stay in
both rows. A cell whose preset has an option chosen on the labels of the same dataset is marked
as tuned in the report (issue 20: a figure is only honest on data that chose nothing).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import yaml

from dcflow.config import config_dir
from dcflow.errors import ConfigError

TUNING = "tuning.yaml"
FIELDS = {"paper", "kind", "chosen_on", "why"}


@cache
def load_tuning(method: str) -> dict[str, dict[str, dict[str, Any]]]:
    """``{dataset: {key: entry}}`` of ``configs/<method>/tuning.yaml`` (empty when absent).

    Raises:
        ConfigError: an entry without the four fields or with an unknown kind.
    """
    path = config_dir() / method / TUNING
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text()) or {}
    for dataset, entries in data.items():
        for key, entry in (entries or {}).items():
            if set(entry) != FIELDS or entry["kind"] not in ("option", "scale"):
                raise ConfigError(f"{path}: {dataset}.{key} needs exactly {sorted(FIELDS)}")
    return {d: dict(e or {}) for d, e in data.items()}


def base_dataset(dataset: str) -> str:
    """The registry name a preset is keyed by (``npz:`` and ``s3://`` data have none)."""
    return "" if dataset.startswith(("npz:", "s3://")) else dataset


def set_value(value: Any) -> str:
    """``value`` as the right-hand side of ``--set KEY=VALUE`` (YAML flow style)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return text.removesuffix("...").strip()


def options_off(method: str, dataset: str) -> list[str]:
    """``KEY=PAPER`` overrides that turn every ``option`` of the preset back to the paper's."""
    entries = load_tuning(method).get(base_dataset(dataset), {})
    return [f"{k}={set_value(e['paper'])}" for k, e in entries.items() if e["kind"] == "option"]


def tuned_on(method: str, dataset: str) -> list[str]:
    """Preset options chosen with labels of ``dataset`` (any of its splits: ``usps:train``)."""
    name = base_dataset(dataset)
    entries = load_tuning(method).get(name, {})
    return [
        k
        for k, e in entries.items()
        if e["kind"] == "option" and str(e["chosen_on"]).split(":")[0] == name
    ]
