""":class:`DeepClusterer`: a scikit-learn-style estimator over :func:`dcflow.api.cluster`.

``fit`` runs the method's whole pipeline (as ``dcflow run``); ``predict`` assigns new images with
the fitted run's model through its ``predict`` stage, without re-training.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Iterator
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin

from dcflow.api import check_images, cluster, data_source
from dcflow.errors import DataError


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
        x = check_images(np.asarray(X))
        fitted = getattr(self, "n_features_in_", None)
        if fitted and int(np.prod(x.shape[1:])) != fitted:
            raise DataError(f"X has images of shape {x.shape[1:]}; the fit's had {fitted} values")
        if len(x) < self.n_clusters_:  # the loader takes no fewer images than clusters: repeat
            x = np.resize(x, (self.n_clusters_, *x.shape[1:]))
        return {"name": data_source(x)}, len(X)
