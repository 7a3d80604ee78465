"""Datasets in a bucket: ``s3://bucket/key.npz`` and image folders, read via :mod:`dcflow.storage`.

Pods have no path of the user's machine, so data reaches them from object storage. ``dcflow run``
downloads the object once, computes its sha256 and pins it in the run config
(``dataset.sha256``); every stage then downloads the object again into its own cache and checks it
against that sha256, so all stages of a run see the same bytes, or fail with one line.

Image folders (``folder:s3://bucket/prefix/``) and file lists (``csv:s3://bucket/list.csv``) are
pinned the same way by a :class:`Listing`'s digest, a sha256 over the sorted ``(key, etag, size)``
of what was listed: every stage lists again and refuses a different listing. Objects are cached
under ``<cache>/s3-objects/`` by bucket, key, ETag and size, so the stages of a run and later runs
download each object version once.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from dcflow.errors import DataError
from dcflow.progress import emit

if TYPE_CHECKING:
    from dcflow.storage import S3Object

CACHE_ENV = "DCFLOW_DATA_CACHE"
OBJECTS_DIR = "s3-objects"  # image objects by (bucket, key, etag, size), shared by every run


def is_remote(name: str) -> bool:
    """Whether a dataset name is an npz in a bucket (``npz:s3://...`` or ``s3://....npz``)."""
    return name.startswith("npz:s3://") or (
        name.startswith("s3://") and name.lower().endswith(".npz")
    )


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
    if not uri.lower().endswith(".npz"):
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


def is_s3_folder(name: str) -> bool:
    """Whether ``name`` is an image folder in a bucket.

    The rule: an ``s3://`` URI whose key ends in ``.npz`` (or any ``npz:s3://`` name) is an npz
    file; ``folder:s3://bucket/prefix`` and every other bare ``s3://`` URI are image folders.
    """
    if name.startswith("folder:s3://"):
        return True
    return name.startswith("s3://") and not name.lower().endswith(".npz")


def folder_uri(uri: str) -> str:
    """``s3://bucket/prefix/``: the canonical folder URI (``folder:`` dropped, one final ``/``).

    Raises:
        DataError: no bucket in the URI.
    """
    from dcflow.storage import split_s3

    uri = uri.removeprefix("folder:")
    bucket, prefix = split_s3(uri)
    if not bucket or not uri.startswith("s3://"):
        raise DataError(f"{uri}: no bucket in the URI (want s3://bucket/prefix/)")
    prefix = prefix.strip("/")
    return f"s3://{bucket}/{prefix}/" if prefix else f"s3://{bucket}/"


@dataclass(frozen=True)
class Listing:
    """Objects of a source in a bucket, with their names relative to the source's prefix.

    Attributes:
        uri: the source (``s3://bucket/prefix/`` or the file list's URI).
        bucket: the bucket every object is in.
        objects: the objects, in the order the source uses them.
        names: each object's name relative to the prefix (the ``file`` column of the outputs).
    """

    uri: str
    bucket: str
    objects: tuple[S3Object, ...]
    names: tuple[str, ...]

    @property
    def digest(self) -> str:
        """sha256 over the sorted ``(key, etag, size)`` listing: what ``dataset.sha256`` pins."""
        blob = hashlib.sha256()
        for obj in sorted(self.objects, key=lambda o: o.key):
            blob.update(f"{obj.key}\0{obj.etag}\0{obj.size}\n".encode())
        return blob.hexdigest()


def list_prefix(uri: str) -> Listing:
    """Every object under a folder URI (folder markers ending in ``/`` left out).

    Names are keys minus the prefix, ordered as a local folder's files are (by path parts).

    Raises:
        ServiceError: the bucket cannot be listed.
    """
    from dcflow.storage import list_objects, split_s3

    uri = folder_uri(uri)
    bucket, prefix = split_s3(uri)
    found = [o for o in list_objects(uri) if not o.key.endswith("/")]
    found.sort(key=lambda o: o.key[len(prefix) :].split("/"))
    return Listing(uri, bucket, tuple(found), tuple(o.key[len(prefix) :] for o in found))


def list_folder(uri: str, extensions: tuple[str, ...]) -> Listing:
    """The objects under a folder URI whose names end in one of ``extensions`` (any case).

    Raises:
        DataError: no such object (``no images under s3://...``).
        ServiceError: the bucket cannot be listed.
    """
    every = list_prefix(uri)
    keep = [
        (o, n)
        for o, n in zip(every.objects, every.names, strict=True)
        if PurePosixPath(n).suffix.lower() in extensions
    ]
    if not keep:
        raise DataError(f"no images under {every.uri} ({', '.join(e[1:] for e in extensions)})")
    return Listing(every.uri, every.bucket, tuple(o for o, _ in keep), tuple(n for _, n in keep))


def check_pin(listing: Listing, sha256: str | None) -> None:
    """Fail when the listing differs from the one pinned in the run config (``None``: no pin).

    Raises:
        DataError: one line: the source changed since the run was configured.
    """
    if sha256 and listing.digest != sha256.lower():
        raise DataError(
            f"{listing.uri}: the listing changed since the run was configured (pinned "
            f"{sha256[:12]}…, now {listing.digest[:12]}…): objects were added, removed or rewritten"
        )


def object_path(bucket: str, obj: S3Object) -> Path:
    """The cache file of one object version, keyed by bucket, key, ETag and size."""
    key = hashlib.sha256(f"{bucket}\0{obj.key}\0{obj.etag}\0{obj.size}".encode()).hexdigest()
    return cache_dir() / OBJECTS_DIR / f"{key[:40]}{PurePosixPath(obj.key).suffix.lower()}"


def local_copies(listing: Listing) -> list[Path]:
    """Local copies of the listed objects, downloading only those not already cached.

    Raises:
        DataError: an object changed between listing and download.
        ServiceError: a download failed.
    """
    from dcflow.storage import download_listed

    paths = [object_path(listing.bucket, o) for o in listing.objects]
    missing = [
        (o, p)
        for o, p in zip(listing.objects, paths, strict=True)
        if not (p.is_file() and p.stat().st_size == o.size)
    ]
    if missing:
        emit(f"  downloading {len(missing)} of {len(paths)} objects from {listing.uri}")
        download_listed(listing.bucket, missing)
    return paths
