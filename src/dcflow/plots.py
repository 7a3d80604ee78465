"""Figures saved with every run (confusion matrix, 2-D embedding) and by sweep-k (score vs K)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dcflow.artifacts import atomic_path


def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def confusion_png(table: np.ndarray, path: str | Path, title: str) -> Path:
    """Heat map of a contingency table ``[clusters, classes]`` (rows already Hungarian-ordered)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 4.5), dpi=100)
    im = ax.imshow(table, cmap="Blues")
    ax.set_xlabel("true class")
    ax.set_ylabel("cluster (matched order)")
    ax.set_title(title, fontsize=9)
    if table.shape[0] <= 20 and table.shape[1] <= 20:
        for (i, j), v in np.ndenumerate(table):
            ax.text(
                j,
                i,
                str(v),
                ha="center",
                va="center",
                fontsize=6,
                color="white" if v > table.max() / 2 else "black",
            )
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(path)


def pca_2d(z: np.ndarray) -> np.ndarray:
    """Project ``[N, d]`` onto its two leading principal components."""
    zc = z - z.mean(0, keepdims=True)
    _, _, vt = np.linalg.svd(zc, full_matrices=False)
    return zc @ vt[:2].T


SCATTER_POINTS = 20000
"""An embedding plot shows at most this many points: a fixed random sample of larger pools."""


def embedding_png(z: np.ndarray, colours: np.ndarray, path: str | Path, title: str) -> Path:
    """Scatter of a 2-D PCA of the embeddings, coloured by ``colours`` (classes or clusters).

    Above :data:`SCATTER_POINTS` rows, PCA and scatter use a fixed random sample (seed 0).
    """
    plt = _pyplot()
    if z.shape[0] > SCATTER_POINTS:
        pick = np.sort(np.random.default_rng(0).choice(z.shape[0], SCATTER_POINTS, replace=False))
        z, colours = z[pick], colours[pick]
    xy = pca_2d(z.astype(np.float64)) if z.shape[1] > 2 else z
    fig, ax = plt.subplots(figsize=(5, 4.5), dpi=100)
    ax.scatter(xy[:, 0], xy[:, 1], c=colours, s=2, cmap="tab10" if colours.max() < 10 else "tab20")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(path)


def sweep_png(
    table: dict[int, dict[str, float]], chosen: int, criterion: str, path: Path, title: str
) -> Path:
    """One panel per internal criterion: score against K, the chosen K marked (sweep-k)."""
    plt = _pyplot()
    names = ("silhouette", "calinski_harabasz", "davies_bouldin", "size_entropy")
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3), dpi=100)
    ks = sorted(table)
    for ax, name in zip(axes, names, strict=True):
        pts = [(k, table[k][name]) for k in ks if name in table[k]]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", markersize=3)
        ax.axvline(chosen, color="tab:red", linestyle="--", linewidth=1)
        ax.set_xlabel("K")
        ax.set_title(name.replace("_", "-") + (" (chosen by)" if name == criterion else ""))
    fig.suptitle(f"{title}: K={chosen}", fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(path)
