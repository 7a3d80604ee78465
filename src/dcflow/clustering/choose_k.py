"""Choosing the number of clusters K from internal criteria alone (no labels).

Each candidate K is clustered and scored on its own embedding with the criteria of
:mod:`dcflow.clustering.internal`. The pick is the K that is best under one criterion:

- ``silhouette`` (Rousseeuw 1987, higher is better; the default, the usual choice for picking K);
- ``calinski_harabasz`` (Calinski & Harabasz 1974, higher is better);
- ``davies_bouldin`` (Davies & Bouldin 1979, lower is better).

Ties go to the smaller K. Every criterion's own pick is reported beside the chosen one, so a user
sees when the criteria disagree. Nothing here reads labels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from dcflow.errors import ConfigError

CRITERIA: dict[str, int] = {"silhouette": 1, "calinski_harabasz": 1, "davies_bouldin": -1}
DEFAULT_CRITERION = "silhouette"
DEFAULT_RANGE = "2:15"


def parse_k_range(text: str, n_samples: int | None = None) -> list[int]:
    """Candidate Ks from ``A:B`` (inclusive), ``A:B:STEP`` or a list ``5,8,10``.

    Raises:
        ConfigError: malformed text, a K below 2, fewer than two candidates, or (given
            ``n_samples``) a K that is not below the number of samples.
    """
    try:
        if ":" in text:
            parts = [int(p) for p in text.split(":")]
            if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] < 1):
                raise ValueError
            ks = list(range(parts[0], parts[1] + 1, parts[2] if len(parts) == 3 else 1))
        else:
            ks = sorted({int(p) for p in text.split(",") if p.strip()})
    except ValueError:
        raise ConfigError(
            f"K range {text!r}: expected A:B, A:B:STEP or a list like 5,8,10"
        ) from None
    if len(ks) < 2 or ks[0] < 2:
        raise ConfigError(f"K range {text!r}: needs at least two candidates, each K >= 2")
    if n_samples is not None and ks[-1] >= n_samples:
        raise ConfigError(f"K range {text!r}: K must be below the number of images ({n_samples})")
    return ks


@dataclass
class KChoice:
    """The outcome of a sweep.

    Attributes:
        k: the chosen K.
        criterion: the criterion it was chosen by.
        reason: one sentence saying why (the score of the pick and of the runner-up).
        picks: every criterion's own best K.
        table: ``{k: scores}`` of every candidate.
    """

    k: int
    criterion: str
    reason: str
    picks: dict[str, int] = field(default_factory=dict)
    table: dict[int, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (K keys as strings)."""
        return {
            "k": self.k,
            "criterion": self.criterion,
            "reason": self.reason,
            "picks": self.picks,
            "table": {str(k): v for k, v in sorted(self.table.items())},
        }


def _best(table: dict[int, dict[str, float]], criterion: str) -> list[int]:
    """Candidates ordered best first under ``criterion`` (ties: smaller K first)."""
    sign = CRITERIA[criterion]
    scored = [k for k, s in table.items() if criterion in s and math.isfinite(float(s[criterion]))]
    return sorted(scored, key=lambda k: (-sign * table[k][criterion], k))


def choose_k(table: dict[int, dict[str, float]], criterion: str = DEFAULT_CRITERION) -> KChoice:
    """Pick K from ``{k: internal scores}`` (module docstring).

    Raises:
        ConfigError: unknown criterion, or no candidate has a finite score under it (e.g. every
            K collapsed into one cluster).
    """
    if criterion not in CRITERIA:
        raise ConfigError(f"unknown criterion {criterion!r}; choose from {', '.join(CRITERIA)}")
    picks = {c: order[0] for c in CRITERIA if (order := _best(table, c))}
    order = _best(table, criterion)
    if not order:
        raise ConfigError(
            f"no K could be scored by {criterion} (every candidate used fewer than 2 clusters)"
        )
    k = order[0]
    word = "highest" if CRITERIA[criterion] > 0 else "lowest"
    reason = f"K={k} has the {word} {criterion} ({table[k][criterion]:.4f}"
    if len(order) > 1:
        runner = order[1]
        reason += f"; next K={runner}: {table[runner][criterion]:.4f}"
    others = [f"{c} picks {v}" for c, v in picks.items() if c != criterion]
    reason += ")" + (f"; {', '.join(others)}" if others else "")
    return KChoice(k, criterion, reason, picks, dict(table))
