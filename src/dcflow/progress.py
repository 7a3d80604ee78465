"""Progress output for long stages and per-epoch curves.

Stages run in child processes whose output is piped, so a bar is printed as a new line at each
tenth of the work (never carriage-return animations). Lines start with ``[dcflow]`` so the CLI can
pick them out of the runner's log.
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from typing import Any

PREFIX = "[dcflow]"


def emit(message: str) -> None:
    """Print one progress line, flushed at once."""
    print(f"{PREFIX} {message}", file=sys.stderr, flush=True)


class Progress:
    """Text progress bar printed at every 10% of ``total`` steps.

    Args:
        name: what is being counted (e.g. ``pretrain``).
        total: number of steps.
        unit: unit name shown after the counts.
    """

    def __init__(self, name: str, total: int, unit: str = "epochs") -> None:
        self.name, self.total, self.unit = name, max(1, total), unit
        self.start = time.perf_counter()
        self.next_mark = 1

    def update(self, step: int, **values: float) -> None:
        """Report that ``step`` of ``total`` steps are done, with current values."""
        done = min(step, self.total)
        if done * 10 < self.next_mark * self.total and done != self.total:
            return
        self.next_mark = done * 10 // self.total + 1
        filled = done * 20 // self.total
        bar = "#" * filled + "." * (20 - filled)
        extras = " ".join(f"{k}={v:.4g}" for k, v in values.items())
        elapsed = time.perf_counter() - self.start
        emit(f"  {self.name} [{bar}] {done}/{self.total} {self.unit} {extras} ({elapsed:.1f}s)")


class Curves:
    """Per-step metric curves collected during a stage (logged to MLflow as step metrics)."""

    def __init__(self) -> None:
        self.data: dict[str, list[tuple[int, float]]] = defaultdict(list)

    def log(self, step: int, **values: float) -> None:
        """Record ``values`` at ``step``."""
        for key, val in values.items():
            self.data[key].append((int(step), float(val)))

    def to_dict(self) -> dict[str, Any]:
        """``{name: [[step, value], ...]}``."""
        return {k: [list(p) for p in v] for k, v in self.data.items()}
