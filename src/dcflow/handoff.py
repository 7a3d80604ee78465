"""Typed hand-offs between stages: what each method hook returns, saved and loaded in one place.

A hook computes; the stage file (:mod:`dcflow.stages`) saves what the hook returned with
``out.save(dir)``, and the next stage loads it with ``ClusterInitOut.load(dir)`` and passes it to
its own hook. The file names inside each artifact are the constants of :mod:`dcflow.artifacts`;
dtypes are fixed here (labels and indices int64, embeddings and probabilities float32), so hooks
may return torch tensors or NumPy arrays. Every write is atomic (temporary name, then rename).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch

from dcflow import artifacts as art
from dcflow.models.state import load_state

T = TypeVar("T", bound="_Out")
Array = Any  # np.ndarray or torch.Tensor; converted on save
StateDict = Mapping[str, torch.Tensor]


def to_numpy(x: Array, dtype: Any) -> np.ndarray:
    """A tensor or array as a NumPy array of ``dtype`` (on the CPU, detached)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x).astype(dtype)


def save_state(directory: str | Path, name: str, state: StateDict) -> None:
    """``torch.save`` a state dict atomically."""
    with art.atomic_path(art.safe_join(directory, name)) as tmp:
        torch.save(dict(state), tmp)


@dataclass
class Selection:
    """Confident samples: the selected rows plus the method's own per-sample arrays.

    Attributes:
        indices: ``[M]`` int64 rows of the dataset that were selected.
        extras: method-specific arrays saved beside them in ``selected.npz`` (``weights``,
            ``threshold``, ``t``, ``pseudo_labels``, ...), kept as given.
    """

    indices: Array
    extras: dict[str, Array] = field(default_factory=dict)

    def save(self, directory: str | Path) -> None:
        """Write ``selected.npz``: ``indices`` (int64), then the extras with their own dtypes."""
        if "indices" in self.extras:
            raise ValueError("Selection.extras must not hold 'indices'")
        arrays = {"indices": to_numpy(self.indices, np.int64)}
        arrays.update({k: np.asarray(_cpu(v)) for k, v in self.extras.items()})
        art.save_npz(directory, art.SELECTED, **arrays)

    @classmethod
    def load(cls, directory: str | Path) -> Selection:
        """Read ``selected.npz``."""
        arrays = art.load_npz(directory, art.SELECTED)
        return cls(arrays["indices"], {k: v for k, v in arrays.items() if k != "indices"})

    def __getitem__(self, key: str) -> np.ndarray:
        return self.indices if key == "indices" else np.asarray(self.extras[key])


def _cpu(x: Array) -> Any:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x


class _Out:
    """Save/load of a dataclass whose fields are listed in ``FILES`` (field -> file, dtype)."""

    FILES: ClassVar[dict[str, tuple[str, Any]]] = {}
    STATES: ClassVar[dict[str, str]] = {}  # state-dict fields -> file

    def save(self, directory: str | Path) -> None:
        """Write every field that is set into ``directory``."""
        Path(directory).mkdir(parents=True, exist_ok=True)
        for name, (filename, dtype) in self.FILES.items():
            value = getattr(self, name)
            if value is not None:
                art.save_npy(directory, filename, to_numpy(value, dtype))
        for name, filename in self.STATES.items():
            value = getattr(self, name)
            if value is not None:
                save_state(directory, filename, value)
        selected = getattr(self, "selected", None)
        if selected is not None:
            selected.save(directory)
        division = getattr(self, "division", None)
        if division is not None:
            art.save_npz(directory, art.DIVISION, **{k: _cpu(v) for k, v in division.items()})
        history = getattr(self, "history", None)
        if history is not None:
            art.append_jsonl(directory, art.HISTORY, history)
        readout = getattr(self, "readout", None)
        if readout is not None:
            art.save_npz(directory, art.READOUT, **{k: _cpu(v) for k, v in readout.items()})

    @classmethod
    def load(cls: type[T], directory: str | Path) -> T:
        """Read back what :meth:`save` wrote (fields whose file is absent stay ``None``)."""
        d = Path(directory)
        kwargs: dict[str, Any] = {}
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        for name, (filename, _) in cls.FILES.items():
            if (d / filename).is_file():
                kwargs[name] = art.load_npy(d, filename)
        for name, filename in cls.STATES.items():
            if (d / filename).is_file():
                kwargs[name] = load_state(d / filename, f"{cls.__name__}.{name}")
        if "selected" in names and (d / art.SELECTED).is_file():
            kwargs["selected"] = Selection.load(d)
        if "division" in names and (d / art.DIVISION).is_file():
            kwargs["division"] = art.load_npz(d, art.DIVISION)
        if "readout" in names and (d / art.READOUT).is_file():
            kwargs["readout"] = art.load_npz(d, art.READOUT)
        if "history" in names and (d / art.HISTORY).is_file():
            import json

            lines = (d / art.HISTORY).read_text().splitlines()
            kwargs["history"] = [json.loads(line) for line in lines if line]
        if (d / art.REPORT).is_file():
            kwargs["metrics"] = art.load_json(d, art.REPORT).get("metrics", {})
        if "labels" in names and "labels" not in kwargs:
            kwargs["labels"] = art.load_npy(d, art.LABELS)  # one clear error: missing labels
        return cls(**kwargs)


@dataclass
class PretrainOut(_Out):
    """pretrain: the backbone's state dict (published to the weights store) and its metrics."""

    weights: StateDict
    metrics: dict[str, float] = field(default_factory=dict)

    STATES: ClassVar[dict[str, str]] = {"weights": art.WEIGHTS}


@dataclass
class ClusterInitOut(_Out):
    """cluster-init: the initial assignment and what later stages start from.

    Attributes:
        labels: ``[N]`` cluster of every sample.
        metrics: label-free numbers for the stage report.
        embeddings: ``[N, d]`` codes the assignment was made on.
        centers: ``[K, d]`` (or ``[K', d]`` over-clustered) centres.
        proba: ``[N, K]`` soft assignment, for methods with a cluster head.
        fine_labels: ``[N]`` over-clustered assignment before the merge into K.
        neighbors: ``[N, k+1]`` mined nearest neighbours, self first.
        fragment_groups: ``[K']`` merged group of every over-clustered head.
        membership: ``[N, K]`` fuzzy memberships.
        model: state dict of the network the assignment came from.
        readout: what ``predict`` needs besides the model to assign new images the same way
            (e.g. the fine-cluster -> cluster map of a merged read-out), saved as ``readout.npz``.
    """

    labels: Array
    metrics: dict[str, float] = field(default_factory=dict)
    embeddings: Array | None = None
    centers: Array | None = None
    proba: Array | None = None
    fine_labels: Array | None = None
    neighbors: Array | None = None
    fragment_groups: Array | None = None
    membership: Array | None = None
    model: StateDict | None = None
    readout: dict[str, Array] | None = None

    FILES: ClassVar[dict[str, tuple[str, Any]]] = {
        "labels": (art.LABELS, np.int64),
        "embeddings": (art.EMBEDDINGS, np.float32),
        "centers": (art.CENTERS, np.float32),
        "proba": (art.PROBA, np.float32),
        "fine_labels": (art.FINE_LABELS, np.int64),
        "neighbors": (art.NEIGHBORS, np.int64),
        "fragment_groups": (art.FRAGMENT_GROUPS, np.int64),
        "membership": (art.MEMBERSHIP, np.float32),
    }
    STATES: ClassVar[dict[str, str]] = {"model": art.MODEL}


@dataclass
class SelectionOut(_Out):
    """confident-sample-selection: the trusted samples."""

    selected: Selection
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class RefineOut(_Out):
    """refine: the final assignment (and what evaluate and predict need).

    Attributes:
        labels: ``[N]`` final cluster of every sample.
        metrics: label-free numbers for the stage report.
        proba: ``[N, K]`` probabilities (ECE in evaluate), where the method has them.
        embeddings: ``[N, d]`` final codes.
        centers: ``[K, d]`` final centres.
        membership: ``[N, K]`` fuzzy memberships (Self-CC).
        target: ``[N, K]`` last self-training target (Self-CC).
        selected: the last selection.
        division: labelled masks and weights of the last co-training split (Self-CC).
        history: one row per iteration.
        model: the refined network's state dict.
        readout: what ``predict`` needs besides the model (see :class:`ClusterInitOut`).
    """

    labels: Array
    metrics: dict[str, float] = field(default_factory=dict)
    proba: Array | None = None
    embeddings: Array | None = None
    centers: Array | None = None
    membership: Array | None = None
    target: Array | None = None
    selected: Selection | None = None
    division: dict[str, Array] | None = None
    history: list[dict[str, Any]] | None = None
    model: StateDict | None = None
    readout: dict[str, Array] | None = None

    FILES: ClassVar[dict[str, tuple[str, Any]]] = {
        "labels": (art.LABELS, np.int64),
        "proba": (art.PROBA, np.float32),
        "embeddings": (art.EMBEDDINGS, np.float32),
        "centers": (art.CENTERS, np.float32),
        "membership": (art.MEMBERSHIP, np.float32),
        "target": (art.TARGET, np.float32),
    }
    STATES: ClassVar[dict[str, str]] = {"model": art.MODEL}


@dataclass
class PredictOut(_Out):
    """predict: the clusters of new images under a finished run's model, without re-training.

    Attributes:
        labels: ``[M]`` cluster of every new image, in the run's cluster numbering.
        metrics: label-free numbers (e.g. the mean confidence).
        proba: ``[M, K]`` probabilities where the method has them (else a constructed soft
            assignment, e.g. a softmax over negative distances to the centres, or ``None``).
        embeddings: ``[M, d]`` codes of the new images.
    """

    labels: Array
    metrics: dict[str, float] = field(default_factory=dict)
    proba: Array | None = None
    embeddings: Array | None = None

    FILES: ClassVar[dict[str, tuple[str, Any]]] = {
        "labels": (art.LABELS, np.int64),
        "proba": (art.PROBA, np.float32),
        "embeddings": (art.EMBEDDINGS, np.float32),
    }
