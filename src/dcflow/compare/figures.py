"""Comparison plots: ACC with error bars, reliability diagrams, confusion grids, curves, embeddings.

Every figure is built from what MLflow holds for the runs (metrics, the predictions CSV, per-step
curves of the stage runs, the per-run embedding PNG), never from a re-run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dcflow.artifacts import atomic_path
from dcflow.clustering.metrics import contingency, hungarian_mapping
from dcflow.plots import _pyplot

CURVE_KEYS = ("loss", "selected_fraction")


def _save(fig: Any, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    _pyplot().close(fig)
    return path


def acc_bars(rows: list[dict[str, Any]], path: Path) -> Path:
    """Grouped bars: ACC mean per method for each dataset, error bars = std over seeds."""
    plt = _pyplot()
    datasets = sorted({r["dataset"] for r in rows})
    methods = sorted({r["method"] for r in rows})
    width = 0.8 / max(len(methods), 1)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.6 * len(datasets) * max(1, len(methods)) / 3), 4))
    for j, m in enumerate(methods):
        xs, means, stds = [], [], []
        for i, d in enumerate(datasets):
            row = next((r for r in rows if r["dataset"] == d and r["method"] == m), None)
            if row and "acc_mean" in row:
                xs.append(i + (j - (len(methods) - 1) / 2) * width)
                means.append(row["acc_mean"])
                stds.append(row["acc_std"])
        ax.bar(xs, means, width, yerr=stds, capsize=3, label=m)
    ax.set_xticks(range(len(datasets)), datasets)
    ax.set_ylim(0, 1)
    ax.set_ylabel("ACC (mean ± std over seeds)")
    ax.legend(fontsize=8, ncol=min(len(methods), 4))
    fig.tight_layout()
    return _save(fig, path)


def reliability(preds: dict[str, np.ndarray], path: Path, title: str, n_bins: int = 10) -> Path:
    """Confidence vs accuracy per method (``preds[m]`` = ``[N, 3]`` label, cluster, confidence)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(preds), figsize=(3 * len(preds), 3.2), squeeze=False)
    edges = np.linspace(0, 1, n_bins + 1)
    for ax, (method, p) in zip(axes[0], sorted(preds.items()), strict=True):
        y, c, conf = p[:, 0].astype(int), p[:, 1].astype(int), p[:, 2]
        mapping = hungarian_mapping(y, c)
        correct = np.array([mapping[int(k)] for k in c]) == y
        bins = np.clip(np.digitize(conf, edges[1:-1]), 0, n_bins - 1)
        counts = np.bincount(bins, minlength=n_bins)
        acc = np.bincount(bins, weights=correct, minlength=n_bins) / np.maximum(counts, 1)
        centers = (edges[:-1] + edges[1:]) / 2
        ax.bar(centers[counts > 0], acc[counts > 0], 1 / n_bins, edgecolor="k", alpha=0.7)
        ax.plot([0, 1], [0, 1], "r--", lw=1)
        ax.set_title(f"{method} (mean conf {conf.mean():.2f})", fontsize=8)
        ax.set_xlabel("confidence")
        ax.set_ylabel("accuracy")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def confusion_grid(preds: dict[str, np.ndarray], path: Path, title: str) -> Path:
    """One Hungarian-ordered contingency table per method."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(preds), figsize=(3 * len(preds), 3), squeeze=False)
    for ax, (method, p) in zip(axes[0], sorted(preds.items()), strict=True):
        y, c = p[:, 0].astype(int), p[:, 1].astype(int)
        mapping = hungarian_mapping(y, c)
        order = sorted(range(int(c.max()) + 1), key=lambda k: (mapping[k] < 0, mapping[k]))
        ax.imshow(contingency(y, c)[order], cmap="Blues")
        ax.set_title(method, fontsize=8)
        ax.set_xlabel("class")
        ax.set_ylabel("cluster")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def curves(per_method: dict[str, dict[str, dict[str, list[list[float]]]]], path: Path) -> Path:
    """Per-step loss and selected fraction of each method's stages (one line per method/stage)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(CURVE_KEYS), figsize=(5 * len(CURVE_KEYS), 3.5))
    for ax, key in zip(axes, CURVE_KEYS, strict=True):
        for method, stages in sorted(per_method.items()):
            for stage, series in sorted(stages.items()):
                if key in series:
                    pts = np.asarray(series[key])
                    ax.plot(pts[:, 0], pts[:, 1], label=f"{method} {stage}", lw=1)
        ax.set_xlabel("step (epoch / iteration)")
        ax.set_ylabel(key)
        if key == "loss" and ax.lines and all(min(ln.get_ydata()) > 0 for ln in ax.lines):
            ax.set_yscale("log")  # pretrain and refine losses differ by orders of magnitude
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def tile_images(images: dict[str, Path], path: Path) -> Path:
    """Put the per-method embedding PNGs side by side (same data, same seed)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(images), figsize=(4 * len(images), 4), squeeze=False)
    for ax, (method, img) in zip(axes[0], sorted(images.items()), strict=True):
        ax.imshow(plt.imread(str(img)))
        ax.set_title(method, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    return _save(fig, path)
