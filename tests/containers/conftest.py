"""Docker tests run whenever dockerd answers and the dcflow image is built; else they skip.

``.ci/run`` installs docker.io, starts dockerd and builds the image with ``docker/build.sh``, so
in CI they always run. Locally: ``docker/build.sh --extras server,s3server`` first.
"""

from __future__ import annotations

import os

import pytest

IMAGE = os.environ.get("DCFLOW_IMAGE") or "ghcr.io/dcflow/dcflow:0.1.0"


def _skip_reason() -> str:
    try:
        from docker.errors import DockerException, ImageNotFound

        import docker
    except ImportError:
        return "the docker Python package is not installed"
    try:
        client = docker.from_env(timeout=5)
        client.ping()
    except DockerException as exc:
        return f"dockerd does not answer ({type(exc).__name__}); .ci/run starts it"
    try:
        client.images.get(IMAGE)
    except ImageNotFound:
        return f"image {IMAGE} is not built (docker/build.sh --extras server,s3server)"
    finally:
        client.close()
    return ""


@pytest.fixture(scope="session")
def dcflow_image() -> str:
    """The dcflow image tag, or a skip naming what is missing."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    return IMAGE
