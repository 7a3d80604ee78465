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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dcflow.artifacts import atomic_path
from dcflow.data import remote
from dcflow.data.npz import mmap_member
from dcflow.errors import DataError
from dcflow.progress import Progress, emit

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
PREFIXES = ("folder:", "csv:")
CACHE_FORMAT = 1
GREY_MODES = {"1", "L", "LA", "I", "I;16", "F"}


@dataclass(frozen=True)
class DecodeSettings:
    """How files become arrays (the ``dataset`` options of the same names).

    ``image_size`` None keeps the native size (all equal); ``channels`` None is 1 when every image
    is grey, else 3; ``resize``: ``crop`` (shorter side to the size, centre crop), ``pad`` (longer
    side to the size, black borders) or ``stretch`` (both sides to the size).
    """

    image_size: int | None = None
    channels: int | None = None
    resize: str = "crop"
    labels_from: str = "none"


@dataclass(frozen=True)
class ImageSource:
    """Decoded images: uint8 ``x`` ``[N, H, W, C]``, labels or None, file paths ``[N]``."""

    x: np.ndarray
    y: np.ndarray | None
    files: np.ndarray
    classes: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Files:
    """Listed files: local paths, their names in the outputs, labels or None, where from."""

    paths: list[Path]
    names: list[str]
    labels: list[str] | None
    where: str


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


def _list_folder(root: Path, settings: DecodeSettings) -> _Files:
    if not root.is_dir():
        raise DataError(f"image folder not found: {root}")
    files = sorted(
        p for p in root.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file()
    )  # fmt: skip
    if not files:
        raise DataError(f"{root} holds no images ({', '.join(e[1:] for e in EXTENSIONS)})")
    names = [p.relative_to(root).as_posix() for p in files]
    return _Files(files, names, _subfolder_labels(names, str(root), settings), str(root))


def _list_csv(path: Path) -> _Files:
    if not path.is_file():
        raise DataError(f"file list not found: {path}")
    rows, labels = _read_list(path, str(path))
    files = [(path.parent / r).resolve() for r in rows]
    return _Files(files, [_rel(f, path.parent) for f in files], labels, str(path))


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


def _remote_folder(uri: str, settings: DecodeSettings) -> tuple[remote.Listing, _Files]:
    """The listing of an image folder in a bucket; its files are filled in by :func:`_fetch`."""
    listing = remote.list_folder(uri, EXTENSIONS)
    names = list(listing.names)
    return listing, _Files([], names, _subfolder_labels(names, uri, settings), uri)


def _remote_csv(uri: str) -> tuple[remote.Listing, _Files]:
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
    return listing, _Files([], names, labels, uri)


def _remote_source(kind: str, uri: str, settings: DecodeSettings) -> tuple[remote.Listing, _Files]:
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


def _fetch(kind: str, uri: str, settings: DecodeSettings, sha256: str | None) -> _Files:
    """List a source in a bucket, check the listing against the pin, and download what is new."""
    listing, files = _remote_source(kind, uri, settings)
    remote.check_pin(listing, sha256)
    local = dict(zip(listing.names, remote.local_copies(listing), strict=True))
    absent = remote.cache_dir() / remote.OBJECTS_DIR / ".absent"  # never written: "missing"
    paths = [local.get(n, absent) for n in files.names]
    return _Files(paths, files.names, files.labels, uri)


def _content_hashes(files: list[Path]) -> list[str | None]:
    def digest(p: Path) -> str | None:
        try:
            return hashlib.sha256(p.read_bytes()).hexdigest()
        except OSError:
            return None

    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(digest, files))


def _fit(img: object, size: int | None, mode: str) -> object:
    """Resize a PIL image to ``size`` x ``size`` by ``mode`` (module :class:`DecodeSettings`)."""
    from PIL import Image

    assert isinstance(img, Image.Image)
    if size is None:
        return img
    w, h = img.size
    if mode == "stretch":
        return img.resize((size, size), Image.Resampling.BILINEAR)
    scale = size / min(w, h) if mode == "crop" else size / max(w, h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    img = img.resize((nw, nh), Image.Resampling.BILINEAR)
    if mode == "crop":
        left, top = (nw - size) // 2, (nh - size) // 2
        return img.crop((left, top, left + size, top + size))
    canvas = Image.new(img.mode, (size, size))
    canvas.paste(img, ((size - nw) // 2, (size - nh) // 2))
    return canvas


def _decode(path: Path, channels: int, settings: DecodeSettings) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as img:
        img.load()
        out = _fit(
            img.convert("L" if channels == 1 else "RGB"), settings.image_size, settings.resize
        )
    arr = np.asarray(out, dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr


def _probe(path: Path) -> tuple[str, tuple[int, int]] | str:
    """``(mode, size)`` of a readable image, else the reason it cannot be read."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.verify()
        with Image.open(path) as img:
            return img.mode, img.size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        return f"{type(exc).__name__}: {exc}"


def _report_skipped(what: str, items: list[tuple[str, str]]) -> None:
    if items:
        name, why = items[0]
        emit(f"  {what}: skipped {len(items)} file(s), e.g. {name} ({why[:80]})")


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def decode_files(listed: _Files, hashes: list[str | None], settings: DecodeSettings) -> ImageSource:
    """Decode the listed files into one uint8 array (skipping unreadable files and duplicates).

    ``hashes`` are the files' content hashes (:func:`_content_hashes`; None: unreadable).

    Raises:
        DataError: nothing readable, or mixed sizes without ``image_size``.
    """
    files, names, root = listed.paths, listed.names, listed.where
    keep, missing, dupes = [], [], []
    seen: dict[str, int] = {}
    for i, h in enumerate(hashes):
        if h is None:
            missing.append((names[i], "missing or unreadable"))
        elif h in seen:
            dupes.append((names[i], f"same bytes as {names[seen[h]]}"))
        else:
            seen[h] = i
            keep.append(i)
    probes = {i: _probe(files[i]) for i in keep}
    bad = [(names[i], p) for i, p in probes.items() if isinstance(p, str)]
    good = [i for i in keep if not isinstance(probes[i], str)]
    _report_skipped("unreadable", missing + bad)
    _report_skipped("duplicates", dupes)
    if not good:
        raise DataError(f"{root}: none of the {len(files)} files is a readable image")
    info = [p for p in probes.values() if not isinstance(p, str)]
    modes = [m for m, _ in info]
    grey = sum(m in GREY_MODES for m in modes)
    channels = settings.channels or (1 if grey == len(modes) else 3)
    if settings.channels is None and 0 < grey < len(modes):
        emit(f"  {grey} grey and {len(modes) - grey} colour images: all read as RGB "
             "(dataset.channels=1 reads them grey)")  # fmt: skip
    sizes = {s for _, s in info}
    if settings.image_size is None and len(sizes) > 1:
        shown = ", ".join(f"{w}x{h}" for w, h in sorted(sizes)[:3])
        raise DataError(
            f"{root}: images have {len(sizes)} different sizes ({shown}, ...); "
            "set dataset.image_size (and dataset.resize: crop, pad or stretch)"
        )
    bar = Progress("decode", len(good), "images")
    decode: Callable[[int], np.ndarray] = lambda i: _decode(files[i], channels, settings)  # noqa: E731
    out = []
    with ThreadPoolExecutor(max_workers=4) as pool:
        for n, arr in enumerate(pool.map(decode, good), 1):
            out.append(arr)
            if n % 256 == 0 or n == len(good):
                bar.update(n)
    y, classes = _labels(listed.labels, good)
    return ImageSource(np.stack(out), y, np.array([names[i] for i in good]), classes)


def _labels(labels: list[str] | None, rows: list[int]) -> tuple[np.ndarray | None, tuple[str, ...]]:
    """Integer labels of the kept rows: ints as given, names numbered in sorted order."""
    if labels is None:
        return None, ()
    kept = [labels[i] for i in rows]
    if all(v.lstrip("-").isdigit() for v in kept):
        return np.array([int(v) for v in kept], dtype=np.int64), ()
    classes = tuple(sorted(set(kept)))
    lookup = {c: j for j, c in enumerate(classes)}
    return np.array([lookup[v] for v in kept], dtype=np.int64), classes


def _cache_key(names: list[str], hashes: list[str | None], settings: DecodeSettings) -> str:
    blob = hashlib.sha256(json.dumps([CACHE_FORMAT, settings.__dict__]).encode())
    for name, h in zip(names, hashes, strict=True):
        blob.update(f"{name}\0{h}\n".encode())
    return blob.hexdigest()[:32]


def _list_source(name: str, settings: DecodeSettings, sha256: str | None) -> _Files:
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
