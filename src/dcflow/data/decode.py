"""Decoding listed image files into one uint8 array, with the skips reported in one line each.

Unreadable or corrupt files and duplicates (identical bytes) are skipped and counted; a folder
whose images all fail, or mixed sizes without ``dataset.image_size``, are rejected. Used by
:func:`dcflow.data.images.load_image_source`, which lists the files and caches the result.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dcflow.errors import DataError
from dcflow.progress import Progress, emit

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
class Files:
    """Listed files: local paths, their names in the outputs, labels or None, where from."""

    paths: list[Path]
    names: list[str]
    labels: list[str] | None
    where: str


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


def decode_files(listed: Files, hashes: list[str | None], settings: DecodeSettings) -> ImageSource:
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
