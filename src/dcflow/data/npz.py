"""Loader for the ``.npz`` format of ``shared/data`` (x, optional y and n_train).

Files are read with ``allow_pickle=False``: an archive holding Python objects is rejected.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from dcflow.errors import DataError

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
            x = archive["x"]
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
