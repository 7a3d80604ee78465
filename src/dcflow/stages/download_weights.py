"""download-weights: look the pretrained weights up in the weights store (a cache).

The key hashes (method, data fingerprint, pretrain config, seed). On a hit the pipeline skips
pretrain and runs verify-weights (:func:`dcflow.stages.pretrain.verify_cached`) instead.
"""

from __future__ import annotations

import time
from typing import Any

from dcflow.methods.registry import get_method
from dcflow.progress import emit
from dcflow.stages.common import default_weights_store, finish, guard, load_run, weights_key
from dcflow.storage import WeightsStore


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
    key = weights_key(
        method.weights_name(), data, method.weights_key_config(data.n_clusters), cfg.seed
    )
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
