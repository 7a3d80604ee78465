"""Datasets in a bucket: ``s3://bucket/key.npz``, read through :mod:`dcflow.storage`.

Pods have no path of the user's machine, so data reaches them from object storage. ``dcflow run``
downloads the object once, computes its sha256 and pins it in the run config
(``dataset.sha256``); every stage then downloads the object again into its own cache and checks it
against that sha256, so all stages of a run see the same bytes, or fail with one line.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from dcflow.errors import DataError

CACHE_ENV = "DCFLOW_DATA_CACHE"


def is_remote(name: str) -> bool:
    """Whether a dataset name is an object-store URI (``s3://...`` or ``npz:s3://...``)."""
    return name.removeprefix("npz:").startswith("s3://")


def cache_dir() -> Path:
    """Where downloaded datasets are kept: ``$DCFLOW_DATA_CACHE``, else the temp directory."""
    return Path(os.environ.get(CACHE_ENV) or Path(tempfile.gettempdir()) / "dcflow-data")


def fetch_npz(uri: str, sha256: str | None) -> tuple[Path, str]:
    """A verified local copy of the npz at ``uri`` and its sha256.

    Args:
        uri: ``s3://bucket/key.npz`` (an ``npz:`` prefix is accepted).
        sha256: expected checksum (``None``: accept the object as it is and report its checksum).

    Raises:
        DataError: not an ``.npz`` key, or the object's checksum differs from ``sha256``.
        ServiceError: the object cannot be downloaded.
    """
    from dcflow.storage import fetch_object, sha256_file

    uri = uri.removeprefix("npz:")
    if not uri.endswith(".npz"):
        raise DataError(f"{uri}: a dataset in a bucket must be an .npz file (x, optional y)")
    if sha256:
        cached = cache_dir() / f"{sha256.lower()}.npz"
        if cached.is_file() and sha256_file(cached) == sha256.lower():
            return cached, sha256.lower()
    tmp = fetch_object(uri, cache_dir() / f".download-{os.getpid()}.npz")
    actual = sha256_file(tmp)
    if sha256 and actual != sha256.lower():
        tmp.unlink(missing_ok=True)
        raise DataError(
            f"{uri}: sha256 mismatch (expected {sha256[:12]}…, got {actual[:12]}…): "
            "the object changed since the run was configured"
        )
    final = cache_dir() / f"{actual}.npz"
    os.replace(tmp, final)
    return final, actual
