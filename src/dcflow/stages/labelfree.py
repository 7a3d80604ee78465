"""What evaluate writes for every run, labels or not: assignments, sizes, prototypes, scores.

- ``assignments.csv``: ``file`` (the image's path for ``folder:``/``csv:`` data, else its row
  index), ``cluster``, ``confidence`` (empty without probabilities) and ``distance``, the
  Euclidean distance of the image's embedding to its cluster's prototype (the mean embedding of
  the cluster's members);
- ``cluster_sizes.json``; the internal scores (:mod:`dcflow.clustering.internal`);
- ``prototypes.png``: one row per cluster, the images nearest its prototype, then (after a gap)
  its least confident members (largest distance when the method has no probabilities).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from dcflow import artifacts as art
from dcflow.clustering.internal import internal_scores
from dcflow.data import Dataset

ASSIGNMENTS = "assignments.csv"
SIZES = "cluster_sizes.json"
GRID = "prototypes.png"
NEAREST, DOUBTFUL = 8, 4


CHUNK = 65536  # rows per pass: memory grows with the chunk, not with N


def prototype_distances(
    z: np.ndarray | Dataset, labels: np.ndarray, k: int, chunk: int = CHUNK
) -> np.ndarray:
    """``[N]`` distance of each row to the mean row of its cluster, in two chunked passes.

    ``z`` is the embedding ``[N, ...]``, or the dataset itself (its pixels, read a chunk at a
    time, for a method without an embedding).
    """
    n = labels.shape[0]

    def rows(s: slice) -> np.ndarray:
        block = z.float_images(s) if isinstance(z, Dataset) else z[s]
        return np.asarray(block, dtype=np.float64).reshape(block.shape[0], -1)

    eye = np.eye(k, dtype=np.float64)
    parts = [slice(i, i + chunk) for i in range(0, n, chunk)]
    sums = sum(eye[labels[s]].T @ rows(s) for s in parts)
    centres = sums / np.maximum(np.bincount(labels, minlength=k), 1)[:, None]
    return np.concatenate([np.linalg.norm(rows(s) - centres[labels[s]], axis=1) for s in parts])


def _grid(data: Dataset, labels: np.ndarray, dist: np.ndarray, doubt: np.ndarray) -> np.ndarray:
    """uint8 ``[rows * (H+1), cols * (W+1), C]`` mosaic (module docstring), blank where empty."""
    c, h, w = data.image_shape
    cols = NEAREST + 1 + DOUBTFUL
    mosaic = np.full((data.n_clusters * (h + 1), cols * (w + 1), c), 255, np.uint8)
    for j in range(data.n_clusters):
        members = np.flatnonzero(labels == j)
        picks = [members[np.argsort(dist[members], kind="stable")[:NEAREST]]]
        picks.append(members[np.argsort(-doubt[members], kind="stable")[:DOUBTFUL]])
        for start, rows in zip((0, NEAREST + 1), picks, strict=True):
            for m, i in enumerate(rows):
                tile = np.round(data.float_images(i).transpose(1, 2, 0) * 255).astype(np.uint8)
                top, left = j * (h + 1), (start + m) * (w + 1)
                mosaic[top : top + h, left : left + w] = tile
    return mosaic


def write_label_free(
    out: Path,
    data: Dataset,
    labels: np.ndarray,
    proba: np.ndarray | None,
    embeddings: np.ndarray | None,
) -> tuple[dict[str, float], list[Path]]:
    """Write the files of the module docstring into ``out``; return the scores and the paths."""
    from PIL import Image

    k = data.n_clusters
    dist = prototype_distances(embeddings if embeddings is not None else data, labels, k)
    conf = np.asarray(proba).max(1) if proba is not None else None
    names = data.files.tolist() if data.files is not None else data.index.tolist()
    confidence = [f"{c:.6f}" for c in conf] if conf is not None else [""] * data.n
    with art.atomic_path(out / ASSIGNMENTS) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "cluster", "confidence", "distance"])
        writer.writerows(
            zip(names, labels.tolist(), confidence, [f"{d:.6f}" for d in dist], strict=True)
        )
    sizes = np.bincount(labels, minlength=k).tolist()
    art.save_json(out, SIZES, {"sizes": sizes})
    doubt = -conf if conf is not None else dist
    mosaic = _grid(data, labels, dist, doubt)
    scale = max(1, 256 // max(mosaic.shape[:2]))  # small digits: scaled up, nearest neighbour
    image = Image.fromarray(mosaic[:, :, 0] if mosaic.shape[2] == 1 else mosaic)
    image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
    with art.atomic_path(out / GRID) as tmp:
        image.save(tmp, format="PNG")
    scores = internal_scores(embeddings, labels, k)
    return scores, [out / ASSIGNMENTS, out / SIZES, out / GRID]
