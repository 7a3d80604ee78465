from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import BaseModel

from dcflow.config import (
    RunConfig,
    build_run_config,
    flatten,
    load_yaml,
    parse_set,
    preset_path,
)
from dcflow.errors import ConfigError
from dcflow.methods.registry import get_method

pytestmark = pytest.mark.usefixtures("isolated_env")


@pytest.fixture
def aspc_config() -> type[BaseModel]:
    return get_method("aspc-da").Config


@pytest.fixture
def preset_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "configs"
    (root / "aspc-da").mkdir(parents=True)
    (root / "aspc-da" / "digits.yaml").write_text(
        "pretrain:\n  epochs: 7\n  batch_size: 64\nrefine:\n  max_iter: 9\nkmeans:\n  n_init: 4\n"
        "threads: 1\n"
    )
    monkeypatch.setenv("DCFLOW_CONFIG_DIR", str(root))
    return root


def test_defaults_are_the_paper_settings(aspc_config: type[BaseModel]) -> None:
    cfg = build_run_config("aspc-da", aspc_config)
    assert cfg.method == "aspc-da" and cfg.dataset.name == "digits" and cfg.seed == 0
    assert cfg.params["pretrain"]["hidden_dims"] == [500, 500, 2000]
    assert cfg.params["pretrain"]["epochs"] == 500
    assert cfg.params["kmeans"]["n_init"] == 20
    assert cfg.params["refine"]["max_iter"] == 100
    assert cfg.params["refine"]["lr"] == 1e-4


def test_layering_defaults_preset_file_set(
    aspc_config: type[BaseModel], preset_dir: Path, tmp_path: Path
) -> None:
    user = tmp_path / "user.yaml"
    user.write_text("pretrain:\n  epochs: 8\nrefine:\n  max_iter: 11\nseed: 5\n")
    cfg = build_run_config(
        "aspc-da",
        aspc_config,
        {"name": "digits"},
        config_file=str(user),
        overrides=["pretrain.epochs=9"],
    )
    p = cfg.params
    assert p["pretrain"]["epochs"] == 9  # --set beats the file
    assert p["refine"]["max_iter"] == 11  # the file beats the preset
    assert p["pretrain"]["batch_size"] == 64  # the preset beats the default
    assert p["kmeans"]["n_init"] == 4  # preset only
    assert p["refine"]["batch_size"] == 256  # class default
    assert cfg.seed == 5 and cfg.threads == 1  # run keys from file and preset


def test_preset_falls_back_to_default_yaml(preset_dir: Path) -> None:
    (preset_dir / "aspc-da" / "default.yaml").write_text("refine:\n  max_iter: 2\n")
    assert preset_path("aspc-da", "digits") == preset_dir / "aspc-da" / "digits.yaml"
    assert preset_path("aspc-da", "usps") == preset_dir / "aspc-da" / "default.yaml"
    assert preset_path("aspc-da", "npz:/data/digits.npz") == preset_dir / "aspc-da" / "default.yaml"
    assert preset_path("other", "digits") is None


def test_use_preset_false_ignores_the_preset(
    aspc_config: type[BaseModel], preset_dir: Path
) -> None:
    cfg = build_run_config("aspc-da", aspc_config, use_preset=False)
    assert cfg.params["pretrain"]["epochs"] == 500


def test_seed_argument_is_applied_last(aspc_config: type[BaseModel]) -> None:
    cfg = build_run_config("aspc-da", aspc_config, overrides=["seed=3"], seed=4)
    assert cfg.seed == 4


def test_run_keys_go_to_the_run_section(aspc_config: type[BaseModel]) -> None:
    cfg = build_run_config(
        "aspc-da", aspc_config, overrides=["seed=3", "dataset.limit=50", "device=cpu"]
    )
    assert cfg.seed == 3 and cfg.dataset.limit == 50 and cfg.device == "cpu"
    assert {"seed", "dataset", "device"}.isdisjoint(cfg.params)


@pytest.mark.parametrize(
    ("where", "key"),
    [
        ("set", "pretrain.epoch"),
        ("set", "refine.max_iters"),
        ("set", "bogus"),
        ("file", "kmeans.n_inits"),
    ],
)
def test_unknown_key_is_an_error_naming_it(
    aspc_config: type[BaseModel], tmp_path: Path, where: str, key: str
) -> None:
    kwargs: dict[str, object] = {}
    if where == "set":
        kwargs["overrides"] = [f"{key}=3"]
    else:
        section, name = key.split(".")
        path = tmp_path / "c.yaml"
        path.write_text(f"{section}:\n  {name}: 3\n")
        kwargs["config_file"] = str(path)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as exc:
        build_run_config("aspc-da", aspc_config, **kwargs)  # type: ignore[arg-type]
    assert "unknown key" in str(exc.value)


def test_unknown_dataset_key_is_an_error(aspc_config: type[BaseModel]) -> None:
    with pytest.raises(ConfigError, match=r"dataset\.limt"):
        build_run_config("aspc-da", aspc_config, overrides=["dataset.limt=5"])


@pytest.mark.parametrize(
    ("override", "where"),
    [
        ("pretrain.epochs=abc", "pretrain.epochs"),
        ("pretrain.epochs=0", "pretrain.epochs"),
        ("refine.lr=-1", "refine.lr"),
        ("augment.interpolation=cubic", "augment.interpolation"),
        ("pretrain.hidden_dims=[]", "pretrain.hidden_dims"),
        ("seed=-1", "seed"),
        ("device=tpu", "device"),
        ("dataset.limit=1", "dataset.limit"),
        ("dataset.split=val", "dataset.split"),
    ],
)
def test_bad_type_or_range_is_an_error(
    aspc_config: type[BaseModel], override: str, where: str
) -> None:
    with pytest.raises(ConfigError, match=where.replace(".", r"\.")):
        build_run_config("aspc-da", aspc_config, overrides=[override])


def test_setting_inside_a_scalar_is_an_error(aspc_config: type[BaseModel]) -> None:
    with pytest.raises(ConfigError, match="not a section"):
        build_run_config(
            "aspc-da", aspc_config, overrides=["pretrain.epochs=3", "pretrain.epochs.x=1"]
        )


@pytest.mark.parametrize(
    ("item", "path", "value"),
    [
        ("a=5", ["a"], 5),
        ("a.b=0.5", ["a", "b"], 0.5),
        ("a.b=true", ["a", "b"], True),
        ("x=false", ["x"], False),
        ("x=[1, 2, 3]", ["x"], [1, 2, 3]),
        ("x=[64,64]", ["x"], [64, 64]),
        ("x=hello", ["x"], "hello"),
        ("x=", ["x"], ""),
        ("x=a=b", ["x"], "a=b"),
    ],
)
def test_parse_set(item: str, path: list[str], value: object) -> None:
    assert parse_set(item) == (path, value)


@pytest.mark.parametrize("item", ["noequals", "=5", " =5"])
def test_parse_set_rejects_malformed(item: str) -> None:
    with pytest.raises(ConfigError, match="key=value"):
        parse_set(item)


def test_flatten() -> None:
    nested = {"a": {"b": 1, "c": {"d": "x"}, "e": [1, 2]}, "f": None}
    assert flatten(nested) == {"a.b": 1, "a.c.d": "x", "a.e": "[1, 2]", "f": None}


def test_run_config_json_round_trip(aspc_config: type[BaseModel]) -> None:
    cfg = build_run_config("aspc-da", aspc_config, {"name": "fake"}, overrides=["dataset.limit=50"])
    text = cfg.to_json()
    back = RunConfig.from_json(text)
    assert back == cfg
    assert json.loads(text)["dataset"]["limit"] == 50


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "{",
        '{"dataset": {}}',  # method missing
        '{"method": "aspc-da", "extra": 1}',
        '{"method": "aspc-da", "seed": "x"}',
    ],
)
def test_bad_run_json_is_a_config_error(text: str) -> None:
    with pytest.raises(ConfigError, match="invalid run config"):
        RunConfig.from_json(text)


def test_load_yaml_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_yaml(listy)


def test_unknown_method_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="aspc-da"):
        get_method("no-such-method")


PRESETS = sorted(
    p
    for p in (Path(__file__).resolve().parents[1] / "configs").glob("*/*.yaml")
    if p.name != "tuning.yaml"  # not a preset: dcflow.compare.tuning
)


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shipped_preset_validates(preset: Path) -> None:
    name = preset.parent.name
    method = get_method(name)
    run = build_run_config(
        name, method.Config, {"name": "digits"}, config_file=str(preset), use_preset=False
    )
    method(run)  # validates params against the method's pydantic model (extra="forbid")


def test_a_preset_typo_is_caught(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("rtds:\n  arch: resnet19\n")
    method = get_method("self-cc")
    with pytest.raises(ConfigError, match="resnet19"):
        method(build_run_config("self-cc", method.Config, {"name": "digits"}, str(bad)))
