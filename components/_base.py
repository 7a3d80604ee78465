"""Shared component settings: one image for every stage, no pip install at run time."""

from __future__ import annotations

import os

DEFAULT_IMAGE = "ghcr.io/dcflow/dcflow:0.1.0"
IMAGE = os.environ.get("DCFLOW_IMAGE", DEFAULT_IMAGE)
COMPONENT_KWARGS = {"base_image": IMAGE, "install_kfp_package": False}
