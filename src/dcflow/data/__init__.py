"""Dataset loading: registry names, ``npz:PATH`` or ``s3://bucket/key.npz`` -> :class:`Dataset`."""

from __future__ import annotations

import numpy as np

from dcflow.config import DatasetConfig
from dcflow.data.base import Dataset, check_labels, resolve_clusters, to_images
from dcflow.data.images import DecodeSettings, is_image_source, load_image_source
from dcflow.data.npz import read_npz
from dcflow.data.registry import get_dataset_loader
from dcflow.data.remote import fetch_npz, is_remote
from dcflow.errors import ConfigError, DataError

__all__ = ["Dataset", "load_dataset"]


def split_rows(
    n_train: int | np.ndarray | None, n: int, split: str, source: str
) -> slice | np.ndarray:
    """The rows of ``split`` (``train`` or ``test``): a prefix of ``n_train`` rows, or a mask.

    Raises:
        DataError: the source defines no split.
    """
    if n_train is None:
        raise DataError(f"{source}: --split {split} needs n_train in the data")
    if isinstance(n_train, np.ndarray):
        if n_train.shape != (n,) or n_train.dtype != np.bool_:
            raise DataError(f"{source}: the train mask must be a boolean [N] array")
        return n_train if split == "train" else ~n_train
    return slice(0, n_train) if split == "train" else slice(n_train, None)


def load_dataset(cfg: DatasetConfig, fit: bool = True) -> Dataset:
    """Load, validate, split and (optionally) subsample a dataset.

    Args:
        cfg: dataset section of the run config.
        fit: the data will be clustered, so it needs at least K samples; ``False`` for data a
            fitted model assigns (``predict``), where one image is enough.

    Returns:
        The pooled (or split) dataset: uint8 (or float32) ``[N, C, H, W]`` images, with labels
        when the source has them.

    Raises:
        DataError: for any problem with the data, in one line.
    """
    files = None
    if is_image_source(cfg.name):
        source = cfg.name
        settings = DecodeSettings(cfg.image_size, cfg.channels, cfg.resize, cfg.labels_from)
        src = load_image_source(cfg.name, settings, cfg.sha256)
        x_raw, y_raw, n_train, files = src.x, src.y, None, src.files
    elif is_remote(cfg.name):
        source = cfg.name.removeprefix("npz:")
        x_raw, y_raw, n_train = read_npz(fetch_npz(source, cfg.sha256)[0])
    elif cfg.name.startswith("npz:"):
        source = cfg.name[4:]
        x_raw, y_raw, n_train = read_npz(source)
    else:
        source = cfg.name
        x_raw, y_raw, n_train = get_dataset_loader(cfg.name)(cfg.data_dir)
    x = to_images(np.asarray(x_raw), source)
    y = check_labels(y_raw, x.shape[0], source)
    index = np.arange(x.shape[0], dtype=np.int64)
    if cfg.split != "all":
        rows = split_rows(n_train, x.shape[0], cfg.split, source)
        x, index = x[rows], index[rows]
        y = y[rows] if y is not None else None
    if cfg.limit is not None and cfg.limit < x.shape[0]:
        pick = np.sort(np.random.default_rng(0).choice(x.shape[0], cfg.limit, replace=False))
        x, index = x[pick], index[pick]
        y = y[pick] if y is not None else None
    if cfg.n_clusters == "auto":  # dcflow run resolves it (a sweep) before any stage starts
        raise ConfigError(
            "dataset.n_clusters=auto reached a stage: run it through `dcflow run` (which sweeps "
            "K first) or give an integer (see `dcflow sweep-k`)"
        )
    k = resolve_clusters(y, x.shape[0] if fit else None, cfg.n_clusters, source)
    files = files[index] if files is not None else None
    return Dataset(cfg.name, x, y, index, k, files)
