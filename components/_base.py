"""Shared component settings: one image for every stage, no pip install at run time.

The image comes in two builds of one tag (``docker/build.sh``): the CPU one, and the CUDA one
tagged ``<tag>-cuda`` (``--variant cuda``). ``compile.py`` runs GPU-requesting stages on the
CUDA build and every other stage on the CPU build.
"""

from __future__ import annotations

import os

CUDA_SUFFIX = "-cuda"


def cuda_variant(image: str) -> str:
    """The CUDA build of ``image``: its tag with ``-cuda`` appended (``:latest`` when untagged).

    An image whose tag already ends in ``-cuda`` is its own CUDA build.

    Raises:
        ValueError: ``image`` is pinned by digest, so no tag can be derived.
    """
    if "@" in image:
        raise ValueError(f"no CUDA tag can be derived from {image!r} (a digest): pass --cuda-image")
    repo, sep, tag = image.rpartition(":")
    if not sep or "/" in tag:  # no tag (a ':' only in a registry port)
        repo, tag = image, "latest"
    return image if tag.endswith(CUDA_SUFFIX) else f"{repo}:{tag}{CUDA_SUFFIX}"


DEFAULT_IMAGE = "ghcr.io/dcflow/dcflow:0.1.0"
DEFAULT_CUDA_IMAGE = cuda_variant(DEFAULT_IMAGE)
IMAGE = os.environ.get("DCFLOW_IMAGE", DEFAULT_IMAGE)
COMPONENT_KWARGS = {"base_image": IMAGE, "install_kfp_package": False}
