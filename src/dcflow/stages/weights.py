"""download-weights and pretrain: the weights cache around pretraining.

``download-weights`` looks the weights up in the store by cache key; on a hit ``verify-weights``
checks the stored file's sha256 and pretrain is skipped (``dsl.If``). ``pretrain`` trains, then
publishes the weights to the store. Either way later stages receive a (URI, sha256) pair and verify
it again before loading.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from dcflow import artifacts as art
from dcflow.errors import WeightsError
from dcflow.progress import emit
from dcflow.registry import get_method
from dcflow.stages.common import default_weights_store, finish, guard, load_run, weights_key
from dcflow.storage import WeightsStore, fetch_weights


@guard
def download_weights(
    config_json: str, weights_store: str, started: float | None = None
) -> dict[str, Any]:
    """Look up cached weights for this run's (method, data, pretrain config, seed).

    Returns:
        ``found`` (bool), ``weights_uri`` and ``weights_sha256`` (empty when not found), ``report``.
    """
    started = started or time.time()
    emit("start download-weights")
    cfg, data = load_run(config_json)
    method = get_method(cfg.method)(cfg)
    key = weights_key(method.weights_name(), data, method.pretrain_config(), cfg.seed)
    hit = WeightsStore(weights_store or default_weights_store()).lookup(method.weights_name(), key)
    emit(
        f"  weights cache hit: {hit.uri}"
        if hit
        else f"  weights cache miss ({key}): pretrain will run"
    )
    report = finish("download-weights", started, None, {"found": float(hit is not None)})
    return {
        "found": hit is not None,
        "weights_uri": hit.uri if hit else "",
        "weights_sha256": hit.sha256 if hit else "",
        "report": report,
    }


@guard
def pretrain(
    config_json: str, weights_store: str, out_dir: str, started: float | None = None
) -> dict[str, Any]:
    """Run the method's pretrain hook, then publish its weights to the store."""
    from dcflow.stages.hooks import run_hook

    started = started or time.time()
    report = run_hook("pretrain", config_json, {}, out_dir, started=started, finish_report=False)
    local = Path(out_dir) / art.WEIGHTS
    if not local.is_file():
        raise WeightsError(f"{json.loads(config_json)['method']} pretrain wrote no {art.WEIGHTS}")
    store = WeightsStore(weights_store or default_weights_store())
    stored = store.publish(
        report["weights_owner"], report["weights_key"], local, curves=report["curves"]
    )
    emit(f"  weights stored: {stored.uri}")
    final = finish("pretrain", started, out_dir, report["metrics"], report["curves"])
    return {"weights_uri": stored.uri, "weights_sha256": stored.sha256, "report": final}


@guard
def verify_cached(
    weights_uri: str, weights_sha256: str, started: float | None = None
) -> dict[str, Any]:
    """On a cache hit: fetch the stored weights and check their sha256; pretrain is skipped."""
    started = started or time.time()
    emit("start pretrain (cached: verifying weights)")
    with tempfile.TemporaryDirectory(prefix="dcflow-verify-") as tmp:
        fetch_weights(weights_uri, weights_sha256, Path(tmp) / art.WEIGHTS)
    return finish("pretrain", started, None, {}, skipped=True)
