"""The comparison grid and its on-disk state (what ran, what is left)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dcflow.artifacts import atomic_path
from dcflow.errors import ConfigError

STATE = "comparison.json"
RUNS_DIR = "runs"


@dataclass(frozen=True)
class RunKey:
    """One cell of the grid."""

    method: str
    dataset: str
    seed: int
    options: str = "on"

    @property
    def slug(self) -> str:
        """File-system name of the cell (``ruc__digits__s0``; ``ruc__digits__s0__off``)."""
        data = self.dataset.replace(":", "_").replace("/", "_")
        tail = "" if self.options == "on" else f"__{self.options}"
        return f"{self.method}__{data}__s{self.seed}{tail}"


@dataclass
class Plan:
    """Methods x datasets x seeds (x options on/off) plus the settings every run shares.

    ``split``/``eval_split`` are the held-out protocol of every run (fit on one split, score the
    other); ``options`` lists ``on`` (the preset) and/or ``off`` (the preset with its tuned options
    back at the paper's values, :func:`dcflow.compare.tuning.options_off`).
    """

    methods: list[str]
    datasets: list[str]
    seeds: list[int]
    data_dir: str = ""
    overrides: list[str] = field(default_factory=list)
    experiment: str = "dcflow-compare"
    comparison: str = ""
    split: str = "all"
    eval_split: str = ""
    options: list[str] = field(default_factory=lambda: ["on"])

    def keys(self) -> list[RunKey]:
        """Every cell, method-major so one method's seeds (and both option rows) finish together."""
        return [
            RunKey(m, d, s, o)
            for d in self.datasets
            for m in self.methods
            for o in self.options
            for s in self.seeds
        ]

    def default_id(self) -> str:
        """A stable id from the grid, so re-running the same command resumes the same comparison."""
        grid: list[object] = [self.methods, self.datasets, self.seeds, self.overrides]
        if (self.split, self.eval_split, self.options) != ("all", "", ["on"]):
            grid += [self.split, self.eval_split, self.options]
        blob = json.dumps(grid)
        return hashlib.sha256(blob.encode()).hexdigest()[:10]


def parse_list(text: str, what: str) -> list[str]:
    """Split ``a,b,c``; empty items are an error."""
    items = [s.strip() for s in text.split(",")]
    if not all(items):
        raise ConfigError(f"--{what}: empty item in {text!r}")
    return items


def parse_seeds(text: str) -> list[int]:
    """``0,1,2`` -> ``[0, 1, 2]`` with a one-line error on anything else."""
    try:
        seeds = [int(s) for s in parse_list(text, "seeds")]
    except ValueError:
        raise ConfigError(f"--seeds expects integers like 0,1,2, got {text!r}") from None
    if any(s < 0 for s in seeds):
        raise ConfigError("--seeds must be >= 0")
    return seeds


def load_or_create(out: Path, plan: Plan) -> Plan:
    """Reuse the comparison id stored in ``out`` (resume), else store this plan's."""
    state = out / STATE
    if state.is_file():
        stored = json.loads(state.read_text())
        plan.comparison = plan.comparison or stored["comparison"]
        plan.experiment = stored.get("experiment", plan.experiment)
        protocol = (stored.get("split", "all"), stored.get("eval_split", ""))
        if protocol != (plan.split, plan.eval_split):
            raise ConfigError(
                f"{out} holds a comparison fitted on split {protocol[0]!r} (held-out "
                f"{protocol[1] or 'none'!r}); use another --out for another protocol"
            )
    plan.comparison = plan.comparison or plan.default_id()
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(state) as tmp:
        tmp.write_text(json.dumps(asdict(plan), indent=2) + "\n")
    return plan


def summary_path(out: Path, key: RunKey) -> Path:
    """Where a finished run's JSON summary lives; its presence marks the run as done."""
    return out / RUNS_DIR / f"{key.slug}.json"
