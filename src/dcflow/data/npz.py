"""Loader for the ``.npz`` format of ``shared/data`` (x, optional y and n_train).

Files are read with ``allow_pickle=False``: an archive holding Python objects is rejected. The
``x`` of an uncompressed archive (``np.savez``, and dcflow's decoded-image cache) is memory-mapped
rather than read: the pages of a batch are read when the batch is gathered, so a pool larger
than memory still loads. A compressed archive (``np.savez_compressed``) is read whole.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Literal

import numpy as np

from dcflow.errors import DataError

_LOCAL_HEADER = 30  # bytes of a zip local file header before its name and extra field

# (x, y or None, the split: n_train (first n_train rows are train), a boolean train mask or None)
Raw = tuple[np.ndarray, np.ndarray | None, "int | np.ndarray | None"]


def read_npz(path: str | Path) -> Raw:
    """Read ``x``, ``y`` (optional) and ``n_train`` (optional) from an npz archive.

    Raises:
        DataError: missing or unreadable file, no ``x`` key, pickled content, bad ``n_train``.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"data file not found: {p}")
    try:
        with np.load(p, allow_pickle=False) as archive:
            keys = set(archive.files)
            if "x" not in keys:
                raise DataError(f"{p}: no 'x' array (found: {', '.join(sorted(keys)) or 'none'})")
            x = mmap_member(p, "x") if "x" in keys else None
            x = archive["x"] if x is None else x
            y = archive["y"] if "y" in keys else None
            n_train = archive["n_train"] if "n_train" in keys else None
    except DataError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{p}: not a readable npz archive ({type(exc).__name__})") from None
    nt: int | None = None
    if n_train is not None:
        if n_train.ndim != 0 or not np.issubdtype(n_train.dtype, np.integer):
            raise DataError(f"{p}: n_train must be an integer scalar")
        nt = int(n_train)
        if not 0 <= nt <= x.shape[0]:
            raise DataError(f"{p}: n_train={nt} is outside [0, {x.shape[0]}]")
    return x, y, nt


def mmap_member(path: Path, key: str) -> np.ndarray | None:
    """Read-only memory map of array ``key`` of an npz archive, or None when it is compressed.

    An archive member stored without compression is a plain ``.npy`` file at a known offset of
    the zip file (its local header, name and extra field come first).
    """
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(f"{key}.npy")
        if info.compress_type != zipfile.ZIP_STORED:
            return None
    with open(path, "rb") as fh:
        fh.seek(info.header_offset)
        header = fh.read(_LOCAL_HEADER)
        if header[:4] != b"PK\x03\x04":
            return None
        name_len = int.from_bytes(header[26:28], "little")
        extra_len = int.from_bytes(header[28:30], "little")
        fh.seek(info.header_offset + _LOCAL_HEADER + name_len + extra_len)
        version = np.lib.format.read_magic(fh)
        fmt = np.lib.format
        read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, fortran, dtype = read(fh)
        if dtype.hasobject:
            raise ValueError("object arrays are not allowed")
        offset = fh.tell()
    if int(np.prod(shape)) == 0:
        return np.zeros(shape, dtype)
    order: Literal["C", "F"] = "F" if fortran else "C"
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order=order)
