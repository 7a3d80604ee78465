"""Run the missing cells of a comparison grid, one ``dcflow run`` process per cell.

A cell is done when its JSON summary exists (written atomically by ``dcflow run --json`` after the
run finished and was logged) or when the comparison's ledger (``records.json``, written with every
report) records it, so an interrupted comparison resumes with the missing cells only, on this
machine or, with the ledger copied into ``--out``, on another.
Each cell runs in its own process: a failing method cannot take the others down.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from dcflow.compare.plan import Plan, RunKey, summary_path
from dcflow.compare.report import LEDGER, load_ledger
from dcflow.compare.tuning import options_off
from dcflow.errors import ConfigError
from dcflow.progress import emit


@dataclass
class Outcome:
    """Counts of one ``compare`` invocation."""

    reused: list[RunKey] = field(default_factory=list)
    ran: list[RunKey] = field(default_factory=list)
    failed: dict[RunKey, str] = field(default_factory=dict)


def scoped_overrides(overrides: list[str], method: str, methods: list[str]) -> list[str]:
    """``--set`` items for one method: plain ``k=v`` apply to all, ``method:k=v`` to that one."""
    out = []
    for item in overrides:
        scope, sep, rest = item.partition(":")
        if sep and "=" not in scope:
            if scope not in methods:
                raise ConfigError(f"--set {item!r}: {scope!r} is not one of the compared methods")
            if scope == method:
                out.append(rest)
        else:
            out.append(item)
    return out


def command(plan: Plan, key: RunKey, out: Path) -> list[str]:
    """The ``dcflow run`` command line of one cell."""
    cmd = [sys.executable, "-m", "dcflow.cli", "run", key.method, "--dataset", key.dataset]
    cmd += ["--seed", str(key.seed), "--experiment", plan.experiment, "--quiet"]
    cmd += ["--tag", f"comparison={plan.comparison}", "--artifacts", str(out / "artifacts")]
    cmd += ["--json", str(summary_path(out, key))]
    cmd += ["--tag", f"options={key.options}"]
    if plan.data_dir:
        cmd += ["--data-dir", plan.data_dir]
    if plan.split != "all":
        cmd += ["--split", plan.split]
    if plan.eval_split:
        cmd += ["--eval-split", plan.eval_split]
    off = options_off(key.method, key.dataset) if key.options == "off" else []
    for item in off + scoped_overrides(plan.overrides, key.method, plan.methods):
        cmd += ["--set", item]
    return cmd


def run_grid(plan: Plan, out: Path) -> Outcome:
    """Run every cell without a summary; report progress on stderr."""
    outcome = Outcome()
    keys = plan.keys()
    ledger = {(r.method, r.dataset, r.seed, r.options) for r in load_ledger(out / LEDGER)}
    for i, key in enumerate(keys, 1):
        label = f"[{i}/{len(keys)}] {key.method} on {key.dataset} seed {key.seed}"
        label += "" if key.options == "on" else f" (options {key.options})"
        recorded = (key.method, key.dataset, key.seed, key.options) in ledger
        if recorded or summary_path(out, key).is_file():
            outcome.reused.append(key)
            emit(f"{label}: done earlier, reused")
            continue
        emit(f"{label}: running")
        started = time.time()
        proc = subprocess.run(command(plan, key, out), capture_output=True, text=True)
        if proc.returncode != 0 or not summary_path(out, key).is_file():
            lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
            outcome.failed[key] = lines[-1] if lines else f"exit code {proc.returncode}"
            emit(f"{label}: FAILED ({outcome.failed[key]})")
            continue
        outcome.ran.append(key)
        summary = json.loads(summary_path(out, key).read_text())
        metrics = summary["metrics"]
        shown = " ".join(f"{k.upper()} {v:.3f}" for k, v in metrics.items() if len(k) <= 3)
        held = summary.get("heldout", {})
        if held.get("metrics"):
            shown += f"; held-out {held['split']} ACC {held['metrics']['acc']:.3f}"
        emit(f"{label}: {shown} ({time.time() - started:.0f} s)")
    return outcome
