"""The hand-off contract: file names inside each stage's artifact directory, and atomic I/O.

Every stage writes into its own output directory; the names below are the only ones a later stage
reads. Writes go to a temporary name in the same directory and are renamed into place, so a killed
stage never leaves a file that a later run would trust.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from dcflow.errors import DataError

REPORT = "report.json"  # every stage: seconds, metrics, curves
WEIGHTS = "weights.pt"  # pretrain: backbone / autoencoder state dict
EMBEDDINGS = "embeddings.npy"  # cluster-init, refine: [N, d] float32
CENTERS = "centers.npy"  # cluster-init: [K, d] float32
LABELS = "labels.npy"  # cluster-init, refine: [N] int64 in [0, K)
PROBA = "proba.npy"  # refine (methods with probabilities): [N, K] float32
MODEL = "model.pt"  # refine: final model state dict; self-cc cluster-init (over > 1): fitted module
SELECTED = "selected.npz"  # confident-sample-selection, refine: indices, weights, threshold, t
HISTORY = "history.jsonl"  # refine: one JSON object per iteration
METRICS = "metrics.json"  # evaluate
PREDICTIONS = "predictions.csv"  # evaluate: index,label,cluster[,confidence]
CONFUSION_PNG = "confusion.png"  # evaluate
CONFUSION_MD = "confusion.md"  # evaluate (with labels): the same table as Markdown, for KFP's UI
EMBEDDING_PNG = "embedding.png"  # evaluate
CONFIG = "config.json"  # evaluate: the effective run config
MEMBERSHIP = "membership.npy"  # self-cc cluster-init, refine: [N, K] float32 fuzzy memberships
TARGET = "target.npy"  # self-cc refine: [N, K] float32 last RTDS target Q (rows sum to 2)
DIVISION = "division.npz"  # self-cc refine: last RTDS labelled masks and weights per classifier
NEIGHBORS = "neighbors.npy"  # scan/ruc cluster-init: [N, k+1] int64 mined neighbours, self first
FINE_LABELS = "fine_labels.npy"  # aspc-da / self-cc cluster-init, over > 1: [N] int64 in [0, K')
READOUT = "readout.npz"  # cluster-init/refine: what predict needs besides the model (maps, stats)
RUN = "run.json"  # evaluate: the fitted run as predict finds it (config, artifacts, weights)
FRAGMENT_GROUPS = "fragment_groups.npy"  # scan/ruc cluster-init, scan.overcluster > 1: [K']


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=f".tmp{target.suffix}", dir=target.parent
    )
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def safe_join(root: str | Path, name: str) -> Path:
    """``root / name``, refusing names that would escape ``root``."""
    base = Path(root).resolve()
    path = (base / name).resolve()
    if base != path and base not in path.parents:
        raise DataError(f"artifact name {name!r} escapes its directory")
    return path


def save_json(directory: str | Path, name: str, obj: Any) -> Path:
    """Write ``obj`` as JSON atomically."""
    path = safe_join(directory, name)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_jsonable))
    return path


def load_json(directory: str | Path, name: str) -> Any:
    """Read a JSON file written by :func:`save_json`."""
    path = safe_join(directory, name)
    if not path.is_file():
        raise DataError(f"missing artifact file {path}")
    return json.loads(path.read_text())


def save_npy(directory: str | Path, name: str, array: np.ndarray) -> Path:
    """Write one array atomically (no pickling)."""
    path = safe_join(directory, name)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, np.asarray(array), allow_pickle=False)
    return path


def load_npy(directory: str | Path, name: str) -> np.ndarray:
    """Read an array written by :func:`save_npy` (``allow_pickle=False``)."""
    path = safe_join(directory, name)
    if not path.is_file():
        raise DataError(f"missing artifact file {path}")
    return np.load(path, allow_pickle=False)


def save_npz(directory: str | Path, name: str, **arrays: np.ndarray) -> Path:
    """Write several arrays atomically into one ``.npz``."""
    path = safe_join(directory, name)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **{k: np.asarray(v) for k, v in arrays.items()})  # type: ignore[arg-type]
    return path


def load_npz(directory: str | Path, name: str) -> dict[str, np.ndarray]:
    """Read an ``.npz`` written by :func:`save_npz`."""
    path = safe_join(directory, name)
    if not path.is_file():
        raise DataError(f"missing artifact file {path}")
    with np.load(path, allow_pickle=False) as archive:
        return {k: archive[k] for k in archive.files}


def append_jsonl(directory: str | Path, name: str, rows: list[dict[str, Any]]) -> Path:
    """Write rows as JSON lines atomically (the whole file at once)."""
    path = safe_join(directory, name)
    with atomic_path(path) as tmp:
        tmp.write_text("".join(json.dumps(r, default=_jsonable) + "\n" for r in rows))
    return path


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
