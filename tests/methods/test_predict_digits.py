"""Issue 20's predict line: on digits, every method's ``predict`` reproduces its own fit.

Each method is fitted on digits' train split (1,438 images) with its ``smoke`` budgets, the stage
files running in this process in pipeline order; then ``predict_arrays`` assigns the same split
again from the run directory alone (the sha256-checked weights and the saved read-out). The
assignments must agree on at least 99 % of the images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dcflow.handoff import ClusterInitOut, RefineOut
from dcflow.methods.registry import method_names
from dcflow.stages.predict import find_run, predict_arrays
from tests.stage_chain import fit_in_process

pytestmark = [pytest.mark.usefixtures("isolated_env"), pytest.mark.slow]
METHODS = [m for m in method_names() if not m.startswith("toy-")]
TRAIN = {"name": "digits", "split": "train"}


def _fit(name: str, tmp_path: Path) -> tuple[str, np.ndarray]:
    """Run every declared stage of ``name`` on digits' train split; (eval dir, fitted labels)."""
    run = fit_in_process(
        name, TRAIN, tmp_path, str(tmp_path / "store"), f"sqlite:///{tmp_path}/m.db"
    )
    load = RefineOut.load if run.final == run.dirs["final"] else ClusterInitOut.load
    return run.dirs["eval"], np.asarray(load(run.final).labels)


@pytest.mark.parametrize("name", METHODS)
def test_predict_on_the_fit_split_reproduces_the_run(name: str, tmp_path: Path) -> None:
    eval_dir, fitted = _fit(name, tmp_path)
    assert fitted.shape == (1438,)  # digits' fixed train split: index % 5 != 4
    root, record = find_run(eval_dir)
    again = predict_arrays(root, record, TRAIN, tmp_path / "predict")
    agreement = float((np.asarray(again.labels) == fitted).mean())
    assert agreement >= 0.99, f"{name}: predict agrees with the fit on {agreement:.4f}"
    if again.proba is not None:
        proba = np.asarray(again.proba)
        assert proba.shape == (1438, 10)
        np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-4)
