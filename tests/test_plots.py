"""Plots: a large pool's embedding scatter is drawn from a fixed sample."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dcflow import plots


def test_a_large_embedding_is_plotted_from_a_fixed_sample(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    real = plots.pca_2d
    monkeypatch.setattr(plots, "pca_2d", lambda z: seen.append(z.shape[0]) or real(z))
    rng = np.random.default_rng(0)
    z, colours = rng.normal(size=(30000, 8)), rng.integers(0, 10, 30000)
    a = plots.embedding_png(z, colours, tmp_path / "a.png", "a")
    b = plots.embedding_png(z, colours, tmp_path / "b.png", "b")
    small = plots.embedding_png(z[:500], colours[:500], tmp_path / "c.png", "c")
    assert seen == [plots.SCATTER_POINTS, plots.SCATTER_POINTS, 500]
    assert Image.open(a).size == Image.open(b).size == Image.open(small).size
