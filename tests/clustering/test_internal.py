"""Label-free scores against scikit-learn and closed forms."""

import numpy as np
import pytest
from sklearn.metrics import silhouette_score

from dcflow.clustering.internal import internal_scores, size_entropy
from dcflow.stages.labelfree import prototype_distances


def test_size_entropy_closed_form() -> None:
    assert size_entropy(np.array([0, 1, 2, 3]), 4) == pytest.approx(1.0)
    assert size_entropy(np.zeros(5, dtype=int), 4) == 0.0
    p = np.array([3, 1]) / 4
    expected = -(p * np.log(p)).sum() / np.log(2)
    assert size_entropy(np.array([0, 0, 0, 1]), 2) == pytest.approx(expected)


def test_scores_rank_separated_blobs_above_noise() -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 50)
    blobs = rng.normal(size=(150, 4)) * 0.1 + labels[:, None] * 3.0
    good = internal_scores(blobs, labels, 3)
    bad = internal_scores(rng.normal(size=(150, 4)), labels, 3)
    assert good["silhouette"] == pytest.approx(silhouette_score(blobs, labels))
    assert good["silhouette"] > 0.8 > bad["silhouette"]
    assert good["calinski_harabasz"] > bad["calinski_harabasz"]
    assert good["davies_bouldin"] < bad["davies_bouldin"]
    assert set(internal_scores(None, labels, 3)) == {"size_entropy"}
    assert set(internal_scores(blobs, np.zeros(150, dtype=int), 3)) == {"size_entropy"}


def test_prototype_distances_are_to_the_cluster_mean() -> None:
    z = np.array([[0.0, 0.0], [2.0, 0.0], [10.0, 10.0]])
    assert prototype_distances(z, np.array([0, 0, 1]), 2).tolist() == [1.0, 1.0, 0.0]
    rng = np.random.default_rng(0)
    z, labels = rng.normal(size=(50, 3)), rng.integers(0, 4, 50)
    whole = np.linalg.norm(z - np.stack([z[labels == j].mean(0) for j in range(4)])[labels], axis=1)
    assert np.allclose(prototype_distances(z, labels, 4, chunk=7), whole)


def test_prototype_distances_of_raw_pixels_read_the_dataset_in_chunks() -> None:
    from dcflow.config import DatasetConfig
    from dcflow.data import load_dataset

    data = load_dataset(DatasetConfig(name="fake"))
    labels = np.arange(data.n) % 3
    pixels = data.float_images().reshape(data.n, -1)
    want = prototype_distances(pixels, labels, 3)
    assert np.allclose(prototype_distances(data, labels, 3, chunk=64), want)
