"""Label-free cluster quality: internal criteria on the embedding, and cluster-size entropy.

These need no ground truth, so they are what a user without labels can read (and what
``dcflow sweep-k`` and a label-free ``compare`` can rank by). Scikit-learn's implementations:
silhouette (Rousseeuw 1987; higher is better, in [-1, 1]), Calinski-Harabasz (1974; higher is
better) and Davies-Bouldin (1979; lower is better), all with Euclidean distances on the
embedding the method clustered. The silhouette is O(N^2), so above ``sample`` points it is
estimated on a fixed random sample (seed 0).
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score


def size_entropy(labels: np.ndarray, k: int) -> float:
    """Normalised entropy of the cluster sizes, ``H(n_1/N, ..., n_K/N) / log K`` in [0, 1].

    1 means equal sizes; 0 means everything in one cluster.
    """
    p = np.bincount(labels, minlength=k).astype(np.float64) / labels.size
    p = p[p > 0]
    return float(-(p * np.log(p)).sum() / np.log(k)) if k > 1 else 0.0


def internal_scores(
    embeddings: np.ndarray | None, labels: np.ndarray, k: int, sample: int = 5000
) -> dict[str, float]:
    """Internal scores of ``labels`` on ``embeddings`` ``[N, d]``.

    ``size_entropy`` always; ``silhouette``, ``calinski_harabasz`` and ``davies_bouldin`` when
    the embeddings are given and 2 to N-1 clusters are in use.
    """
    out = {"size_entropy": size_entropy(labels, k)}
    used = np.unique(labels).size
    if embeddings is None or not 2 <= used < labels.size:
        return out
    z = np.asarray(embeddings, dtype=np.float64).reshape(labels.size, -1)
    size = sample if labels.size > sample else None
    out["silhouette"] = float(silhouette_score(z, labels, sample_size=size, random_state=0))
    out["calinski_harabasz"] = float(calinski_harabasz_score(z, labels))
    out["davies_bouldin"] = float(davies_bouldin_score(z, labels))
    return out
