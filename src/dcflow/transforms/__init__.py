"""Batched random views on device tensors ``[B, C, H, W]`` in ``[0, 1]``: primitives and presets.

Primitives (one copy each):

* :mod:`~dcflow.transforms.sample`: uniform draws, coins, random-resized-crop boxes.
* :mod:`~dcflow.transforms.warp`: affine matrix composition, ``affine_grid`` + ``grid_sample``,
  test-time resize.
* :mod:`~dcflow.transforms.colour`: grey, random grey, hue rotation, colour jitter.
* :mod:`~dcflow.transforms.blur`, :mod:`~dcflow.transforms.noise`,
  :mod:`~dcflow.transforms.cutout`, :mod:`~dcflow.transforms.stroke`,
  :mod:`~dcflow.transforms.randaugment`.

Views built from them, as the methods use them:

* :mod:`~dcflow.transforms.views`: :class:`ViewConfig` / :func:`random_view` (SimCLR, SCAN, RUC).
* :mod:`~dcflow.transforms.presets`: :class:`CCView` (CC, ULDC), :func:`affine_view` and
  :func:`simclr_view` (ProPos, HaDis), :class:`RandomAffine` (ASPC-DA, Self-CC).

``tests/transforms/test_presets.py`` pins every preset's output bit for bit.
"""

from dcflow.transforms.presets import CCView, RandomAffine, affine_view, simclr_view
from dcflow.transforms.views import ViewConfig, random_view
from dcflow.transforms.warp import resize

__all__ = [
    "CCView",
    "RandomAffine",
    "ViewConfig",
    "affine_view",
    "random_view",
    "resize",
    "simclr_view",
]
