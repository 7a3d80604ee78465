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
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dcflow.artifacts import atomic_path
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


def is_image_source(name: str) -> bool:
    """Whether ``name`` is a ``folder:`` or ``csv:`` source."""
    return name.startswith(PREFIXES)


def absolute_source(name: str) -> str:
    """``folder:PATH`` / ``csv:PATH`` with an absolute path (stages may run elsewhere).

    Raises:
        DataError: the folder or the file list does not exist.
    """
    kind, _, raw = name.partition(":")
    path = Path(raw).expanduser().resolve()
    if kind == "folder" and not path.is_dir():
        raise DataError(f"image folder not found: {path}")
    if kind == "csv" and not path.is_file():
        raise DataError(f"file list not found: {path}")
    return f"{kind}:{path}"


def cache_dir() -> Path:
    """Where decoded arrays are kept: ``$DCFLOW_CACHE_DIR/images`` or ``.dcflow/cache/images``."""
    return Path(os.environ.get("DCFLOW_CACHE_DIR") or ".dcflow/cache").resolve() / "images"


def _list_folder(root: Path, settings: DecodeSettings) -> tuple[list[Path], list[str] | None]:
    if not root.is_dir():
        raise DataError(f"image folder not found: {root}")
    files = sorted(
        p for p in root.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file()
    )  # fmt: skip
    if not files:
        raise DataError(f"{root} holds no images ({', '.join(e[1:] for e in EXTENSIONS)})")
    if settings.labels_from != "subfolders":
        return files, None
    top = [p.relative_to(root).parts for p in files]
    loose = [p for p, parts in zip(files, top, strict=True) if len(parts) < 2]
    if loose:
        raise DataError(
            f"labels_from=subfolders: {len(loose)} images lie directly in {root} "
            f"(e.g. {loose[0].name}); put every image in a class sub-folder"
        )
    return files, [parts[0] for parts in top]


def _list_csv(path: Path) -> tuple[list[Path], list[str] | None]:
    if not path.is_file():
        raise DataError(f"file list not found: {path}")
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise DataError(f"{path} lists no images")
    column = next((c for c in ("path", "file", "filename") if c in rows[0]), None)
    if column is None:
        found = ", ".join(rows[0]) or "none"
        raise DataError(f"{path}: needs a 'path' column (found: {found})")
    files = [(path.parent / r[column]).resolve() for r in rows]
    labels = [r["label"] for r in rows] if "label" in rows[0] else None
    if labels is not None and any(v in ("", None) for v in labels):
        raise DataError(f"{path}: the label column has empty cells; fill or drop the column")
    return files, labels


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


def _report_skipped(what: str, items: list[tuple[Path, str]], root: Path) -> None:
    if items:
        path, why = items[0]
        emit(f"  {what}: skipped {len(items)} file(s), e.g. {_rel(path, root)} ({why[:80]})")


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def decode_files(
    files: list[Path],
    hashes: list[str | None],
    labels: list[str] | None,
    root: Path,
    settings: DecodeSettings,
) -> ImageSource:
    """Decode ``files`` into one uint8 array (skipping unreadable files and duplicates).

    ``hashes`` are the files' content hashes (:func:`_content_hashes`; None: unreadable).

    Raises:
        DataError: nothing readable, or mixed sizes without ``image_size``.
    """
    keep, missing, dupes = [], [], []
    seen: dict[str, int] = {}
    for i, (path, h) in enumerate(zip(files, hashes, strict=True)):
        if h is None:
            missing.append((path, "missing or unreadable"))
        elif h in seen:
            dupes.append((path, f"same bytes as {_rel(files[seen[h]], root)}"))
        else:
            seen[h] = i
            keep.append(i)
    probes = {i: _probe(files[i]) for i in keep}
    bad = [(files[i], p) for i, p in probes.items() if isinstance(p, str)]
    good = [i for i in keep if not isinstance(probes[i], str)]
    _report_skipped("unreadable", missing + bad, root)
    _report_skipped("duplicates", dupes, root)
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
    y, classes = _labels(labels, good)
    names = np.array([_rel(files[i], root) for i in good])
    return ImageSource(np.stack(out), y, names, classes)


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


def _cache_key(
    files: list[Path], hashes: list[str | None], root: Path, settings: DecodeSettings
) -> str:
    blob = hashlib.sha256(json.dumps([CACHE_FORMAT, settings.__dict__]).encode())
    for path, h in zip(files, hashes, strict=True):
        blob.update(f"{_rel(path, root)}\0{h}\n".encode())
    return blob.hexdigest()[:32]


def load_image_source(name: str, settings: DecodeSettings) -> ImageSource:
    """Decode (or reuse the cached decode of) a ``folder:PATH`` or ``csv:PATH`` source."""
    kind, _, raw = name.partition(":")
    path = Path(raw).expanduser().resolve()
    if kind == "folder":
        files, labels = _list_folder(path, settings)
        root = path
    else:
        files, labels = _list_csv(path)
        root = path.parent
    hashes = _content_hashes(files)  # read once: the cache key and the duplicate check
    cached = cache_dir() / f"{_cache_key(files, hashes, root, settings)}.npz"
    if cached.is_file():
        with np.load(cached, allow_pickle=False) as a:
            y = a["y"] if "y" in a.files else None
            return ImageSource(a["x"], y, a["files"], tuple(a["classes"].tolist()))
    emit(f"  reading {len(files)} images from {path}")
    src = decode_files(files, hashes, labels, root, settings)
    cached.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"x": src.x, "files": src.files, "classes": np.array(src.classes, dtype=str)}
    if src.y is not None:
        arrays["y"] = src.y
    with atomic_path(cached) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)  # type: ignore[arg-type]
    emit(f"  {src.x.shape[0]} images of {src.x.shape[1]}x{src.x.shape[2]}x{src.x.shape[3]} "
         f"cached in {cached}")  # fmt: skip
    return src
