"""Stage cache behind ``dcflow run --resume``: reuse finished stages whose inputs hash the same.

Every finished cluster-init / confident-sample-selection / refine output is copied into the stage
cache (``$DCFLOW_STAGE_CACHE``) under a key hashing the stage name, the run config (tags aside),
the *content* of every input artifact and the weights' sha256. With ``$DCFLOW_RESUME=1`` a stage
whose key is cached restores that output instead of recomputing it, so a run killed mid-way
recomputes only the stages after the last finished one. Entries are renamed into place complete,
so a killed copy is never reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from dcflow import artifacts as art

CACHE_ENV = "DCFLOW_STAGE_CACHE"
RESUME_ENV = "DCFLOW_RESUME"
_VOLATILE = {art.REPORT}  # timings differ run to run; they are not content


def cache_dir() -> Path | None:
    """The stage cache directory, or ``None`` when caching is off."""
    value = os.environ.get(CACHE_ENV, "")
    return Path(value) if value else None


def resuming() -> bool:
    """Whether finished stages may be reused (``dcflow run --resume``)."""
    return os.environ.get(RESUME_ENV, "") == "1" and cache_dir() is not None


def dir_digest(path: str | Path) -> str:
    """sha256 over every file of an artifact directory (relative name + content), reports aside."""
    root = Path(path)
    h = hashlib.sha256()
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        if f.name in _VOLATILE or ".tmp" in f.name:
            continue
        h.update(str(f.relative_to(root)).encode() + b"\0")
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def stage_key(stage: str, config_json: str, inputs: dict[str, str], weights_sha256: str) -> str:
    """Content key of one stage execution."""
    cfg = json.loads(config_json)
    cfg.pop("tags", None)
    payload = {
        "stage": stage,
        "config": cfg,
        "inputs": {name: dir_digest(p) for name, p in sorted(inputs.items())},
        "weights": weights_sha256,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]


def lookup(key: str) -> Path | None:
    """The cached output of ``key`` when resuming and it is complete."""
    root = cache_dir()
    if root is None or not resuming():
        return None
    entry = root / key
    return entry if (entry / art.REPORT).is_file() else None


def restore(entry: Path, out: Path) -> dict[str, Any]:
    """Copy a cached output into ``out`` and return its stored report."""
    for f in entry.iterdir():
        if f.name != art.REPORT:
            shutil.copy2(f, out / f.name) if f.is_file() else shutil.copytree(f, out / f.name)
    return dict(json.loads((entry / art.REPORT).read_text()))


def store(key: str, out: Path) -> None:
    """Copy a finished stage output into the cache (complete copies only, first writer wins)."""
    root = cache_dir()
    if root is None or (root / key).exists():
        return
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=root))
    try:
        shutil.copytree(out, tmp, dirs_exist_ok=True)
        os.replace(tmp, root / key)
    except OSError:
        pass  # another run stored the same key meanwhile; nothing to reuse is lost
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
