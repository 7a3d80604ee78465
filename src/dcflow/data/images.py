"""Your own images: ``folder:PATH`` (a recursive image folder) and ``csv:PATH`` (a file list).

Files are decoded once with Pillow into one uint8 array and cached by content
(:func:`load_image_source`): the key hashes every file's bytes and the decode settings, so each
stage of a run (and every later run) reuses the decoded array instead of decoding the folder
again, and an edited, added or removed file gives a new key. Problems are handled up front, each
reported in one line: unreadable or corrupt files and duplicates (identical bytes) are skipped
and counted, an empty folder, a folder whose images all fail, mixed sizes without
``dataset.image_size`` and a CSV without a path column are rejected. Labels are optional:
sub-folder names become labels only with ``dataset.labels_from: subfolders``; a CSV's optional
``label`` column holds them.

Both forms also read from a bucket: ``folder:s3://bucket/prefix/`` (or a bare ``s3://`` URI not
ending in ``.npz``) and ``csv:s3://bucket/list.csv`` (paths relative to the list's prefix). The
objects are listed and downloaded through :mod:`dcflow.data.remote` and then decoded by the same
code as local files, named by their keys minus the prefix.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import posixpath
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from dcflow.artifacts import atomic_path
from dcflow.data import remote
from dcflow.data.decode import DecodeSettings, Files, ImageSource, decode_files
from dcflow.data.npz import mmap_member
from dcflow.errors import DataError
from dcflow.progress import emit

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
PREFIXES = ("folder:", "csv:")
CACHE_FORMAT = 1


def is_image_source(name: str) -> bool:
    """Whether ``name`` is a ``folder:`` or ``csv:`` source, or an image folder in a bucket."""
    return name.startswith(PREFIXES) or remote.is_s3_folder(name)


def _split(name: str) -> tuple[str, str]:
    """``(kind, location)``: a bare ``s3://`` folder URI is ``folder``, canonical with a final /."""
    if remote.is_s3_folder(name):
        return "folder", remote.folder_uri(name)
    kind, _, raw = name.partition(":")
    return kind, raw


def absolute_source(name: str) -> str:
    """``folder:PATH`` / ``csv:PATH`` with an absolute path (stages may run elsewhere).

    A source in a bucket becomes ``folder:s3://bucket/prefix/`` or stays ``csv:s3://...``.

    Raises:
        DataError: the folder or the file list does not exist.
    """
    kind, raw = _split(name)
    if raw.startswith("s3://"):
        return f"{kind}:{raw}"
    path = Path(raw).expanduser().resolve()
    if kind == "folder" and not path.is_dir():
        raise DataError(f"image folder not found: {path}")
    if kind == "csv" and not path.is_file():
        raise DataError(f"file list not found: {path}")
    return f"{kind}:{path}"


def cache_dir() -> Path:
    """Where decoded arrays are kept: ``$DCFLOW_CACHE_DIR/images`` or ``.dcflow/cache/images``."""
    return Path(os.environ.get("DCFLOW_CACHE_DIR") or ".dcflow/cache").resolve() / "images"


def _subfolder_labels(names: list[str], where: str, settings: DecodeSettings) -> list[str] | None:
    """Each file's top sub-folder when ``labels_from`` is ``subfolders``, else None."""
    if settings.labels_from != "subfolders":
        return None
    parts = [n.split("/") for n in names]
    loose = [n for n, p in zip(names, parts, strict=True) if len(p) < 2]
    if loose:
        raise DataError(
            f"labels_from=subfolders: {len(loose)} images lie directly in {where} "
            f"(e.g. {loose[0]}); put every image in a class sub-folder"
        )
    return [p[0] for p in parts]


def _list_folder(root: Path, settings: DecodeSettings) -> Files:
    if not root.is_dir():
        raise DataError(f"image folder not found: {root}")
    files = sorted(
        p for p in root.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file()
    )  # fmt: skip
    if not files:
        raise DataError(f"{root} holds no images ({', '.join(e[1:] for e in EXTENSIONS)})")
    names = [p.relative_to(root).as_posix() for p in files]
    return Files(files, names, _subfolder_labels(names, str(root), settings), str(root))


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _list_csv(path: Path) -> Files:
    if not path.is_file():
        raise DataError(f"file list not found: {path}")
    rows, labels = _read_list(path, str(path))
    files = [(path.parent / r).resolve() for r in rows]
    return Files(files, [_rel(f, path.parent) for f in files], labels, str(path))


def _read_list(path: Path, shown: str) -> tuple[list[str], list[str] | None]:
    """The path column and the optional label column of a file list (``shown`` in errors)."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise DataError(f"{shown} lists no images")
    column = next((c for c in ("path", "file", "filename") if c in rows[0]), None)
    if column is None:
        found = ", ".join(rows[0]) or "none"
        raise DataError(f"{shown}: needs a 'path' column (found: {found})")
    labels = [r["label"] for r in rows] if "label" in rows[0] else None
    if labels is not None and any(v in ("", None) for v in labels):
        raise DataError(f"{shown}: the label column has empty cells; fill or drop the column")
    return [r[column] for r in rows], labels


def _remote_folder(uri: str, settings: DecodeSettings) -> tuple[remote.Listing, Files]:
    """The listing of an image folder in a bucket; its files are filled in by :func:`_fetch`."""
    listing = remote.list_folder(uri, EXTENSIONS)
    names = list(listing.names)
    return listing, Files([], names, _subfolder_labels(names, uri, settings), uri)


def _remote_csv(uri: str) -> tuple[remote.Listing, Files]:
    """The listing of a file list in a bucket: the list, then each row's object.

    Row paths are relative to the list's prefix; rows naming no object under it stay in the names
    and are skipped as missing, as in a local list.
    """
    every = remote.list_prefix(uri.rsplit("/", 1)[0] + "/")  # the list and its images
    keyed = dict(zip(every.names, every.objects, strict=True))
    list_name = uri.rsplit("/", 1)[1]
    if list_name not in keyed:
        raise DataError(f"file list not found: {uri}")
    own = remote.Listing(uri, every.bucket, (keyed[list_name],), (list_name,))
    rows, labels = _read_list(remote.local_copies(own)[0], uri)
    names = [posixpath.normpath(r) for r in rows]
    found = sorted({n for n in names if n in keyed and n != list_name})
    objects = (keyed[list_name], *(keyed[n] for n in found))
    listing = remote.Listing(uri, every.bucket, objects, (list_name, *found))
    return listing, Files([], names, labels, uri)


def _remote_source(kind: str, uri: str, settings: DecodeSettings) -> tuple[remote.Listing, Files]:
    return _remote_folder(uri, settings) if kind == "folder" else _remote_csv(uri)


def pin_source(name: str) -> str | None:
    """The digest ``dcflow run`` pins in ``dataset.sha256`` (None for a local source).

    Raises:
        DataError: nothing to read under the prefix, or no such file list.
        ServiceError: the bucket cannot be listed.
    """
    kind, location = _split(name)
    if not location.startswith("s3://"):
        return None
    return _remote_source(kind, location, DecodeSettings())[0].digest


def _fetch(kind: str, uri: str, settings: DecodeSettings, sha256: str | None) -> Files:
    """List a source in a bucket, check the listing against the pin, and download what is new."""
    listing, files = _remote_source(kind, uri, settings)
    remote.check_pin(listing, sha256)
    local = dict(zip(listing.names, remote.local_copies(listing), strict=True))
    absent = remote.cache_dir() / remote.OBJECTS_DIR / ".absent"  # never written: "missing"
    paths = [local.get(n, absent) for n in files.names]
    return Files(paths, files.names, files.labels, uri)


def _content_hashes(files: list[Path]) -> list[str | None]:
    def digest(p: Path) -> str | None:
        try:
            return hashlib.sha256(p.read_bytes()).hexdigest()
        except OSError:
            return None

    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(digest, files))


def _cache_key(names: list[str], hashes: list[str | None], settings: DecodeSettings) -> str:
    blob = hashlib.sha256(json.dumps([CACHE_FORMAT, settings.__dict__]).encode())
    for name, h in zip(names, hashes, strict=True):
        blob.update(f"{name}\0{h}\n".encode())
    return blob.hexdigest()[:32]


def _list_source(name: str, settings: DecodeSettings, sha256: str | None) -> Files:
    kind, location = _split(name)
    if location.startswith("s3://"):
        return _fetch(kind, location, settings, sha256)
    path = Path(location).expanduser().resolve()
    return _list_folder(path, settings) if kind == "folder" else _list_csv(path)


def load_image_source(
    name: str, settings: DecodeSettings, sha256: str | None = None
) -> ImageSource:
    """Decode (or reuse the cached decode of) a ``folder:`` or ``csv:`` source.

    Args:
        name: ``folder:PATH``, ``csv:PATH``, ``folder:s3://bucket/prefix/`` or
            ``csv:s3://bucket/list.csv``.
        settings: how files become arrays.
        sha256: the listing digest pinned for a source in a bucket (None: accept any listing).

    Raises:
        DataError: bad or empty data, or a bucket listing other than the pinned one.
        ServiceError: the bucket cannot be listed or read.
    """
    listed = _list_source(name, settings, sha256)
    hashes = _content_hashes(listed.paths)  # read once: the cache key and the duplicate check
    cached = cache_dir() / f"{_cache_key(listed.names, hashes, settings)}.npz"
    if cached.is_file():
        with np.load(cached, allow_pickle=False) as a:
            y = a["y"] if "y" in a.files else None
            x = mmap_member(cached, "x")  # uncompressed: the pool stays on disk until read
            x = a["x"] if x is None else x
            return ImageSource(x, y, a["files"], tuple(a["classes"].tolist()))
    emit(f"  reading {len(listed.paths)} images from {listed.where}")
    src = decode_files(listed, hashes, settings)
    cached.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"x": src.x, "files": src.files, "classes": np.array(src.classes, dtype=str)}
    if src.y is not None:
        arrays["y"] = src.y
    with atomic_path(cached) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)  # type: ignore[arg-type]
    emit(f"  {src.x.shape[0]} images of {src.x.shape[1]}x{src.x.shape[2]}x{src.x.shape[3]} "
         f"cached in {cached}")  # fmt: skip
    return src
