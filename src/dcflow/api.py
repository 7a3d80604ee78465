"""``dcflow.cluster(...)``: ``dcflow run`` from Python, the same pipeline.

:func:`cluster` builds the ``dcflow run`` command line with the CLI's own parser and runs it
through :func:`dcflow.cli.execute_run`: the same config layering, service checks,
``n_clusters=auto`` sweep, kfp.local pipeline (one process per stage), MLflow run and artifacts.
Arrays are written once to a content-keyed ``npz`` under the cache directory
(``$DCFLOW_CACHE_DIR/arrays/<sha256>.npz``, default ``.dcflow/cache``), so calling again on the
same images hits the pretrained-weights cache. This module reaches the KFP layer through
``dcflow.cli`` only (a test enforces that the cli package is its one entry point).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dcflow import artifacts as art
from dcflow.errors import ConfigError, DataError

SOURCES = ("folder:", "csv:", "npz:", "s3://")


@dataclass(frozen=True, eq=False)
class ClusterResult:
    """What one :func:`cluster` call produced.

    Attributes:
        labels: ``[N]`` int64 cluster of every image (the run's final assignment).
        proba: ``[N, K]`` float32 probabilities where the method has them, else None.
        embedding: ``[N, d]`` float32 codes of the final stage (refine's, else cluster-init's).
        run_id: the MLflow run id (None while the run waits in ``.dcflow/mlflow-pending``).
        artifacts: the run directory (``dcflow predict`` takes it; a local copy for s3://).
        metrics: ACC, NMI, ARI (and ECE) against the labels; empty without labels.
        internal: label-free scores (silhouette, Calinski-Harabasz, Davies-Bouldin, ...).
        n_clusters: K.
        summary: the run summary, as ``dcflow run --json`` writes it.
    """

    labels: np.ndarray = field(repr=False)
    proba: np.ndarray | None = field(repr=False)
    embedding: np.ndarray | None = field(repr=False)
    run_id: str | None
    artifacts: Path
    metrics: dict[str, float]
    internal: dict[str, float]
    n_clusters: int
    summary: dict[str, Any] = field(repr=False)


def cache_dir() -> Path:
    """Where arrays are kept: ``$DCFLOW_CACHE_DIR/arrays``, else ``.dcflow/cache/arrays``."""
    return Path(os.environ.get("DCFLOW_CACHE_DIR") or ".dcflow/cache").resolve() / "arrays"


def check_images(x: np.ndarray) -> np.ndarray:
    """uint8 ``[N,H,W]``/``[N,H,W,C]`` as is; floats checked to lie in [0, 1], as float32."""
    if x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[3] not in (1, 3)) or not x.shape[0]:
        raise DataError(f"images must be [N,H,W] or [N,H,W,C] (C 1 or 3), got shape {x.shape}")
    if x.dtype == np.uint8:
        return x
    if not np.issubdtype(x.dtype, np.floating):
        raise DataError(f"images must be uint8 (or float in [0, 1]), got {x.dtype}")
    if not np.isfinite(x).all() or x.min() < 0 or x.max() > 1:
        raise DataError("float images must be finite and lie in [0, 1] (or pass uint8)")
    return x.astype(np.float32, copy=False)


def _check_labels(labels: Any, n: int) -> np.ndarray:
    y = np.asarray(labels)
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"labels must be {n} integers, got {y.dtype} of shape {y.shape}")
    return y.astype(np.int64, copy=False)


def array_to_npz(images: Any, labels: Any = None) -> Path:
    """Write images (and labels) once to ``<cache_dir>/<sha256 of the content>.npz``.

    Written under a temporary name and renamed into place, so no reader sees a partial file.

    Raises:
        DataError: not images (uint8, or float in [0, 1]) or labels of another length.
    """
    arrays = {"x": check_images(np.asarray(images))}
    if labels is not None:
        arrays["y"] = _check_labels(labels, arrays["x"].shape[0])
    digest = hashlib.sha256()
    for name, arr in arrays.items():
        arr = np.ascontiguousarray(arr)
        digest.update(f"{name}:{arr.dtype.str}:{arr.shape};".encode())
        digest.update(arr.reshape(-1).view(np.uint8).data)
    path = cache_dir() / f"{digest.hexdigest()}.npz"
    if not path.is_file():
        with art.atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **arrays)  # type: ignore[arg-type]
    return path


def data_source(data: Any, labels: Any = None) -> str:
    """The ``--dataset`` value of ``data``: an array, a folder, a file, a source or a name."""
    if not isinstance(data, (str, os.PathLike)):
        return f"npz:{array_to_npz(data, labels)}"
    if labels is not None:
        raise ConfigError("labels= goes with an array; other sources carry their own labels")
    text = os.fspath(data)
    if text.startswith(SOURCES):
        return text
    path = Path(text).expanduser()
    if path.is_dir():
        return f"folder:{path.resolve()}"
    if path.is_file() and path.suffix.lower() in (".npz", ".csv"):
        return f"{path.suffix.lower()[1:]}:{path.resolve()}"
    if isinstance(data, os.PathLike):
        raise DataError(f"no folder, .npz or .csv file at {path}")
    return text  # a registry name: unknown names are a ConfigError


def _plain(value: Any) -> Any:
    """NumPy scalars and arrays, tuples and paths as plain YAML-able values."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return os.fspath(value) if isinstance(value, os.PathLike) else value


def set_items(overrides: Mapping[str, Any] | None = None, **settings: Any) -> list[str]:
    """``--set`` strings: dotted keys of ``overrides``, then keywords with ``__`` for dots.

    ``set_items({"refine.tol": 0.01}, pretrain__epochs=20)`` gives
    ``["refine.tol=0.01", "pretrain.epochs=20"]``; every value is written as the YAML that
    ``--set`` reads back to the same value (``"yes"`` stays a string).
    """
    import yaml

    pairs = [*(overrides or {}).items(), *((k.replace("__", "."), v) for k, v in settings.items())]
    items = []
    for key, value in pairs:
        text = yaml.safe_dump(_plain(value), default_flow_style=True, width=2**31).strip()
        items.append(f"{key}={text.removesuffix('...').rstrip()}")
    return items


def _parse(argv: list[str]) -> argparse.Namespace:
    """``dcflow`` argv through the CLI's own parser; a usage error is a :class:`ConfigError`."""
    from dcflow.cli import _parser

    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            return _parser().parse_args(argv)
    except SystemExit:
        message = err.getvalue().strip().removeprefix("dcflow: error: ")
        raise ConfigError(re.sub(r" \(see .*--help\)$", "", message) or "bad arguments") from None


def preset_file(method: str, preset: str | Path) -> Path:
    """A preset of ``method`` by name (``configs/<method>/<name>.yaml``), or a YAML file.

    Raises:
        ConfigError: no such preset (the method's presets are listed) or file.
    """
    from dcflow.config import config_dir

    if Path(preset).suffix in (".yaml", ".yml"):
        path = Path(preset).expanduser()
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        return path.resolve()
    path = config_dir() / method / f"{preset}.yaml"
    if not path.is_file():
        names = ", ".join(sorted(p.stem for p in path.parent.glob("*.yaml"))) or "none"
        raise ConfigError(f"no preset {preset!r} for {method} (its presets: {names})")
    return path


def _seed(seed: int | None, random_state: Any) -> int | None:
    if random_state is not None and not isinstance(random_state, (int, np.integer)):
        raise ConfigError(f"random_state must be an int or None, got {type(random_state).__name__}")
    if seed is not None and random_state is not None and seed != random_state:
        raise ConfigError(f"seed={seed} and random_state={random_state} differ; give one")
    return seed if seed is not None else None if random_state is None else int(random_state)


def _read_result(summary: dict[str, Any]) -> ClusterResult:
    """The arrays of a finished run, read from its cluster-init and final artifacts."""
    from dcflow.stages.predict import find_run, run_clusters

    run_dir = Path(summary["artifacts"])
    if str(summary["artifacts"]).startswith("s3://"):
        from dcflow.storage import download_prefix

        local = cache_dir().parent / "runs" / Path(summary["artifacts"]).name
        run_dir = download_prefix(summary["artifacts"], local)
    root, record = find_run(run_dir)
    init = root / record["init"]
    final = root / record["final"] if record["final"] else init
    found = [d / art.EMBEDDINGS for d in (final, init) if (d / art.EMBEDDINGS).is_file()]
    embedding = found[0] if found else None
    proba = final / art.PROBA
    return ClusterResult(
        labels=art.load_npy(final, art.LABELS).astype(np.int64),
        proba=np.load(proba).astype(np.float32) if proba.is_file() else None,
        embedding=np.load(embedding).astype(np.float32) if embedding else None,
        run_id=summary["mlflow"].get("run_id") or None,
        artifacts=run_dir,
        metrics=dict(summary["metrics"]),
        internal=dict(summary.get("internal", {})),
        n_clusters=run_clusters(root, record),
        summary=summary,
    )


def cluster(
    method: str,
    data: Any,
    n_clusters: int | str | None = None,
    *,
    labels: Any = None,
    seed: int | None = None,
    random_state: int | None = None,
    split: str | None = None,
    dataset_options: Mapping[str, Any] | None = None,
    preset: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    artifacts: str | Path = ".dcflow/runs",
    experiment: str = "dcflow",
    quiet: bool = True,
    **settings: Any,
) -> ClusterResult:
    """Cluster ``data`` with ``method``'s pipeline, as ``dcflow run`` would.

    Args:
        method: a registered method (``dcflow methods``), e.g. ``"scan"``.
        data: uint8 images ``[N,H,W]``/``[N,H,W,C]`` (or float in [0, 1]); a folder (str or
            Path); a ``folder:``/``csv:``/``npz:`` source, an ``s3://`` URI or a dataset name.
        n_clusters: K (``dataset.n_clusters``); None: the number of labels; ``"auto"``: swept.
        labels: ``[N]`` int labels of an array ``data``, for ACC/NMI/ARI (never for fitting).
        seed: the run's seed (``--seed``); ``random_state`` is its scikit-learn name.
        random_state: as ``seed``.
        split: ``"all"``, ``"train"`` or ``"test"`` (``--split``).
        dataset_options: ``dataset.*`` fields, e.g. ``{"image_size": 32}``; ``data_dir`` too.
        preset: a preset of the method by name (``"digits"``: ``configs/aspc-da/digits.yaml``)
            or a YAML file, instead of the data's own preset (arrays: ``default.yaml``).
        overrides: config keys with dots, e.g. ``{"pretrain.epochs": 20}``.
        artifacts: where the stage artifacts go (a directory or ``s3://bucket/prefix``).
        experiment: the MLflow experiment.
        quiet: hide the stages' progress lines.
        **settings: config keys with ``__`` for dots (``pretrain__epochs=20``), after
            ``overrides``.

    Raises:
        DcflowError: its subclasses, as ``dcflow run`` exits with them (ConfigError, DataError,
            WeightsError, ServiceError, StageError).
    """
    from dcflow.cli import execute_run
    from dcflow.methods.registry import get_method

    get_method(method)  # an unknown method fails before any array is written
    options = dict(dataset_options or {})
    argv = ["run", method, f"--dataset={data_source(data, labels)}", f"--artifacts={artifacts}"]
    argv += [f"--experiment={experiment}", *(["--quiet"] if quiet else [])]
    if options.get("data_dir"):
        argv.append(f"--data-dir={options.pop('data_dir')}")
    if split is not None:
        argv.append(f"--split={split}")
    if (chosen := _seed(seed, random_state)) is not None:
        argv.append(f"--seed={chosen}")
    if preset is not None:
        argv += ["--no-preset", f"--config={preset_file(method, preset)}"]
    sets = set_items({f"dataset.{k}": v for k, v in options.items()})
    sets += set_items({"dataset.n_clusters": n_clusters} if n_clusters is not None else {})
    sets += set_items(overrides, **settings)
    return _read_result(execute_run(_parse([*argv, *(f"--set={s}" for s in sets)])))
