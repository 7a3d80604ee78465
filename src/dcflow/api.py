"""``dcflow.cluster(...)`` and :class:`DeepClusterer`: ``dcflow run`` from Python, same pipeline.

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
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin

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


def _check_images(x: np.ndarray) -> np.ndarray:
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
    arrays = {"x": _check_images(np.asarray(images))}
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


@contextlib.contextmanager
def _silenced(quiet: bool) -> Iterator[None]:
    """Hide the ``[dcflow]`` progress lines (stderr) when ``quiet``."""
    with contextlib.redirect_stderr(io.StringIO()) if quiet else contextlib.nullcontext():
        yield


class DeepClusterer(ClusterMixin, BaseEstimator):
    """scikit-learn-style estimator over :func:`cluster`: ``fit`` runs the whole pipeline.

    ``predict`` assigns new images with the fitted run's model (its ``predict`` stage), without
    re-training. ``X`` holds images (see :func:`cluster`), not 2-D tabular rows; ``y`` is ignored.

    scikit-learn's estimator checks that apply, and pass (``tests/test_api.py``):
    ``check_parameters_default_constructible``, ``check_no_attributes_set_in_init``,
    ``check_get_params_invariance``, ``check_set_params``,
    ``check_do_not_raise_errors_in_init_or_set_params``, ``check_estimator_cloneable``,
    ``check_estimator_repr``, ``check_mixin_order``, ``check_estimator_tags_renamed``,
    ``check_valid_tag_types``, ``check_estimators_unfitted``. The others do not apply: they fit on
    2-D tabular float arrays (``make_blobs``, iris), which are not images; they check dtype, NaN,
    sparse and 1-sample handling of tabular data; and they fit dozens of times, each fit being a
    multi-stage pipeline run of tens of seconds that also logs an MLflow run.

    Attributes (after ``fit``):
        labels_: ``[N]`` int64 clusters. proba_: ``[N, K]`` float32 or None.
        embedding_: ``[N, d]`` float32 or None. run_dir_: the run directory. run_id_: MLflow.
        n_clusters_: K. n_features_in_: values per image (array input only). result_: the
        :class:`ClusterResult`.
    """

    def __init__(
        self,
        method: str = "scan",
        n_clusters: int | str | None = 10,
        random_state: int | None = 0,
        overrides: dict[str, Any] | None = None,
        dataset_options: dict[str, Any] | None = None,
        preset: str | None = None,
        quiet: bool = True,
    ) -> None:
        self.method = method
        self.n_clusters = n_clusters
        self.random_state = random_state
        self.overrides = overrides
        self.dataset_options = dataset_options
        self.preset = preset
        self.quiet = quiet

    def __sklearn_tags__(self) -> Any:
        """Images (3-D/4-D arrays, non-negative), not 2-D tabular rows (scikit-learn >= 1.6)."""
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.input_tags.positive_only = True
        return tags

    def fit(self, X: Any, y: Any = None) -> DeepClusterer:  # noqa: N803
        """Run the method's pipeline on ``X`` (``y`` is ignored: clustering is unsupervised)."""
        result = cluster(
            self.method,
            X,
            self.n_clusters,
            random_state=self.random_state,
            overrides=self.overrides,
            dataset_options=self.dataset_options,
            preset=self.preset,
            quiet=self.quiet,
        )
        self.result_ = result
        self.labels_, self.proba_, self.embedding_ = result.labels, result.proba, result.embedding
        self.run_dir_, self.run_id_ = result.artifacts, result.run_id
        self.n_clusters_ = result.n_clusters
        if not isinstance(X, (str, os.PathLike)):
            self.n_features_in_ = int(np.prod(np.shape(X)[1:]))
        return self

    def predict(self, X: Any) -> np.ndarray:  # noqa: N803
        """Assign new images with the fitted run (no re-training); ``[M]`` int64 clusters.

        Raises:
            NotFittedError: before ``fit``.
            DcflowError: bad images (another size than the fitted ones), a failing stage.
        """
        from sklearn.utils.validation import check_is_fitted

        from dcflow.handoff import to_numpy
        from dcflow.stages.predict import find_run, predict_arrays

        check_is_fitted(self, "run_dir_")
        root, record = find_run(self.run_dir_)
        dataset, m = self._new_data(X, record)
        with tempfile.TemporaryDirectory(prefix="dcflow-predict-") as tmp, _silenced(self.quiet):
            out = predict_arrays(root, record, dataset, tmp)
        return to_numpy(out.labels, np.int64)[:m]

    def _new_data(self, X: Any, record: dict[str, Any]) -> tuple[dict[str, Any], int | None]:  # noqa: N803
        """``X`` as the predict stage's dataset, and how many of its rows are ``X``'s."""
        from dcflow.predict_cli import IMAGE_OPTIONS

        if isinstance(X, (str, os.PathLike)):
            dataset: dict[str, Any] = {"name": data_source(X)}
            if dataset["name"].startswith(("folder:", "csv:")):  # decoded as the fit's were
                fit = record["config"]["dataset"]
                dataset.update({k: fit[k] for k in IMAGE_OPTIONS if fit.get(k) is not None})
            return dataset, None
        x = _check_images(np.asarray(X))
        fitted = getattr(self, "n_features_in_", None)
        if fitted and int(np.prod(x.shape[1:])) != fitted:
            raise DataError(f"X has images of shape {x.shape[1:]}; the fit's had {fitted} values")
        if len(x) < self.n_clusters_:  # the loader takes no fewer images than clusters: repeat
            x = np.resize(x, (self.n_clusters_, *x.shape[1:]))
        return {"name": data_source(x)}, len(X)
