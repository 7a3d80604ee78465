"""Validated run configuration: the single source of defaults.

A run is described by one :class:`RunConfig`: method name, dataset, seed, device and the method's
own hyper-parameters (``params``), which are validated by the method's pydantic config class. Every
model forbids unknown keys, so a typo is an error, never a silently ignored new key.

Layering, lowest to highest precedence: the method config class defaults (paper settings), the
preset ``configs/<method>/<dataset>.yaml`` (or ``configs/<method>/default.yaml``), ``--config
FILE`` and finally ``--set a.b=value`` overrides. Keys whose first segment names a
:class:`RunConfig` field (``dataset``, ``seed``, ``device``, ``threads``) address the run; every
other key addresses ``params``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dcflow.errors import ConfigError, DcflowError


class _Loader(yaml.SafeLoader):
    """YAML's safe loader without YAML 1.1's base-60 integers (``2:15`` stays a string)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:int"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(
        r"""^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"""
    ),
    list("-+0123456789"),
)


class StrictModel(BaseModel):
    """Base model: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DatasetConfig(StrictModel):
    """Which data to cluster.

    Attributes:
        name: registry name (``digits``, ``usps``, ``mnist``, ``fashion-mnist``), ``npz:PATH`` or
            ``s3://bucket/key.npz``.
        data_dir: directory holding ``<name>.npz``; torchvision is the fallback when absent.
        split: ``all`` pools train and test (the clustering convention), else one split.
        n_clusters: number of clusters; defaults to the number of distinct labels. ``auto``:
            ``dcflow run`` first sweeps ``k_range`` (``dcflow sweep-k``) and runs with the K it
            picks by internal criteria; the stages themselves always get an integer.
        k_range: candidate Ks of ``n_clusters: auto`` (``A:B``, ``A:B:STEP`` or ``5,8,10``).
        limit: cluster a fixed random subset of this size (seed 0), e.g. for quick tests.
        sha256: checksum of an ``s3://`` dataset; every stage verifies its download against it
            (``dcflow run`` pins it when it starts).
        eval_split: score this other split after fitting on ``split`` (held-out protocol):
            evaluate assigns it with the method's ``predict`` and reports it apart.
        image_size: ``folder:``/``csv:`` sources: decode every image to this square size
            (None: the images' own size, which must then be the same for all).
        channels: ``folder:``/``csv:``: 1 (grey) or 3 (RGB); None: 1 when every image is grey.
        resize: ``folder:``/``csv:``: ``crop`` (shorter side to the size, centre crop), ``pad``
            (longer side, black borders) or ``stretch``.
        labels_from: ``folder:``: ``subfolders`` makes each top sub-folder a label; ``none``
            (default) reads no labels.
    """

    name: str = "digits"
    data_dir: str | None = None
    split: Literal["all", "train", "test"] = "all"
    n_clusters: int | Literal["auto"] | None = Field(default=None)
    k_range: str = "2:15"
    limit: int | None = Field(default=None, ge=2)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")
    eval_split: Literal["train", "test"] | None = None
    image_size: int | None = Field(default=None, ge=4, le=1024)
    channels: Literal[1, 3] | None = None
    resize: Literal["crop", "pad", "stretch"] = "crop"
    labels_from: Literal["none", "subfolders"] = "none"

    @model_validator(mode="after")
    def _k(self) -> DatasetConfig:
        from dcflow.clustering.choose_k import parse_k_range

        if isinstance(self.n_clusters, int) and self.n_clusters < 2:
            raise ValueError("n_clusters must be at least 2 (or auto)")
        try:
            parse_k_range(self.k_range)
        except DcflowError as exc:
            raise ValueError(str(exc)) from None
        return self

    @model_validator(mode="after")
    def _held_out_split(self) -> DatasetConfig:
        if self.eval_split is not None and self.eval_split == self.split:
            raise ValueError("eval_split must be the split the run is not fitted on")
        if self.eval_split is not None and self.split == "all":
            raise ValueError("eval_split needs split: train or test (the fit split)")
        image_options = (self.image_size, self.channels, self.resize, self.labels_from)
        own_images = self.name.startswith(("folder:", "csv:"))
        if not own_images and image_options != (None, None, "crop", "none"):
            raise ValueError(
                "image_size, channels, resize and labels_from apply to folder: and csv: data only"
            )
        if self.labels_from == "subfolders" and not self.name.startswith("folder:"):
            raise ValueError("labels_from: subfolders needs a folder: dataset")
        return self


class RunConfig(StrictModel):
    """One pipeline run: method, data, seed, device and the method's hyper-parameters.

    ``tags`` are extra MLflow tags (``comparison`` id, ...); they never change results.
    """

    method: str
    dataset: DatasetConfig = Field(default_factory=DatasetConfig)
    seed: int = Field(default=0, ge=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int | None = Field(default=None, ge=1)
    nproc: int = Field(
        default=1, ge=1, le=64, description="training processes on this machine (torchrun)"
    )
    params: dict[str, Any] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)

    def to_json(self) -> str:
        """Serialise for the KFP boundary (one JSON string parameter)."""
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        """Parse and validate the JSON string produced by :meth:`to_json`."""
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            raise ConfigError(f"invalid run config: {_first_error(exc)}") from None


RUN_KEYS = frozenset({"dataset", "seed", "device", "threads", "nproc"})


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "<root>"
    extra = f" (got {err['input']!r})" if err["type"] != "extra_forbidden" else ""
    msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
    return f"{loc}: {msg}{extra}"


def validate_model(model_cls: type[BaseModel], data: dict[str, Any], what: str) -> BaseModel:
    """Validate ``data`` against ``model_cls``; raise one-line :class:`ConfigError` on failure."""
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid {what} config: {_first_error(exc)}") from None


def parse_set(item: str) -> tuple[list[str], Any]:
    """Parse one ``a.b=value`` override; the value is read as YAML (``5``, ``true``, ``[1, 2]``)."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set expects key=value, got {item!r}")
    try:
        value = yaml.load(raw, Loader=_Loader) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return [p for p in key.strip().split(".")], value


def _deep_set(target: dict[str, Any], path: list[str], value: Any) -> None:
    for part in path[:-1]:
        node = target.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"cannot set {'.'.join(path)}: {part} is not a section")
        target = node
    target[path[-1]] = value


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, val in over.items():
        if isinstance(val, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], val)
        else:
            out[key] = val
    return out


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with one-line errors for a missing or malformed file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        data = yaml.load(p.read_text(), Loader=_Loader) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"config file {p} is not valid YAML: {str(exc).splitlines()[0]}"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must hold a mapping at the top level")
    return data


def config_dir() -> Path:
    """Where presets live: ``$DCFLOW_CONFIG_DIR`` or the repository's ``configs/``."""
    env = os.environ.get("DCFLOW_CONFIG_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "configs"


def preset_path(method: str, dataset: str) -> Path | None:
    """Preset for (method, dataset), falling back to the method's ``default.yaml``."""
    stem = dataset if not dataset.startswith("npz:") else "default"
    for name in (stem, "default"):
        path = config_dir() / method / f"{name}.yaml"
        if path.is_file():
            return path
    return None


def split_run_keys(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a mapping into run-level keys and method params."""
    run = {k: v for k, v in data.items() if k in RUN_KEYS}
    params = {k: v for k, v in data.items() if k not in RUN_KEYS}
    if "params" in params:
        params = _deep_merge({k: v for k, v in params.items() if k != "params"}, params["params"])
    return run, params


def build_run_config(
    method: str,
    params_model: type[BaseModel],
    dataset: dict[str, Any] | None = None,
    config_file: str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    seed: int | None = None,
    use_preset: bool = True,
) -> RunConfig:
    """Layer defaults, preset, config file and overrides into one validated :class:`RunConfig`.

    Args:
        method: registered method name.
        params_model: the method's pydantic config class (validates ``params``).
        dataset: dataset fields given on the command line (name, data_dir, split...).
        config_file: optional YAML file, same format as a preset.
        overrides: ``a.b=value`` strings.
        seed: the ``--seed`` value, applied last.
        use_preset: load ``configs/<method>/<dataset>.yaml`` when it exists.

    Returns:
        The effective configuration with every default filled in.
    """
    run: dict[str, Any] = {"method": method, "dataset": dict(dataset or {})}
    params: dict[str, Any] = {}
    layers: list[dict[str, Any]] = []
    ds_name = run["dataset"].get("name", "digits")
    preset = preset_path(method, ds_name) if use_preset else None
    if preset is not None:
        layers.append(load_yaml(preset))
    if config_file:
        layers.append(load_yaml(config_file))
    for layer in layers:
        run_part, param_part = split_run_keys(layer)
        run = _deep_merge(run, run_part)
        params = _deep_merge(params, param_part)
    for item in overrides:
        path, value = parse_set(item)
        if path[0] in RUN_KEYS:
            _deep_set(run, path, value)
        else:
            _deep_set(params, path, value)
    if seed is not None:
        run["seed"] = seed
    cfg = validate_model(RunConfig, {**run, "params": {}}, "run")
    checked = validate_model(params_model, params, method)
    assert isinstance(cfg, RunConfig)
    cfg.params = checked.model_dump(mode="json")
    return cfg


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested dicts into ``a.b.c`` keys (for MLflow params)."""
    out: dict[str, Any] = {}
    for key, val in data.items():
        name = f"{prefix}{key}"
        if isinstance(val, dict):
            out.update(flatten(val, name + "."))
        else:
            out[name] = json.dumps(val) if isinstance(val, list) else val
    return out
