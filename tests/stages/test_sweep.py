"""sweep-k: the choice of K (closed form), K in the weights key, and the pipeline end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dcflow.cli import main
from dcflow.clustering.choose_k import choose_k, parse_k_range
from dcflow.config import build_run_config
from dcflow.data import load_dataset
from dcflow.errors import ConfigError
from dcflow.methods.registry import get_method
from dcflow.stages.common import weights_key

TABLE = {
    2: {"silhouette": 0.20, "calinski_harabasz": 90.0, "davies_bouldin": 1.5},
    3: {"silhouette": 0.35, "calinski_harabasz": 80.0, "davies_bouldin": 1.1},
    4: {"silhouette": 0.35, "calinski_harabasz": 70.0, "davies_bouldin": 0.9},
    5: {"silhouette": 0.10, "calinski_harabasz": 95.0, "davies_bouldin": 2.0},
}


def test_each_criterion_picks_its_own_best_and_ties_go_to_the_smaller_k() -> None:
    choice = choose_k(TABLE)
    assert choice.k == 3 and choice.criterion == "silhouette"  # 3 and 4 tie: the smaller
    assert choice.picks == {"silhouette": 3, "calinski_harabasz": 5, "davies_bouldin": 4}
    assert "K=3 has the highest silhouette (0.3500; next K=4: 0.3500)" in choice.reason
    assert choose_k(TABLE, "davies_bouldin").k == 4  # lower is better
    assert choose_k(TABLE, "calinski_harabasz").k == 5


def test_unscorable_candidates_are_skipped_and_none_scorable_is_an_error() -> None:
    table: dict[int, dict[str, float]] = {2: {"size_entropy": 0.0}, 3: {"silhouette": 0.1}}
    assert choose_k(table).k == 3
    with pytest.raises(ConfigError, match="no K could be scored"):
        choose_k({2: {"size_entropy": 0.0}})
    with pytest.raises(ConfigError, match="unknown criterion"):
        choose_k(TABLE, "inertia")


@pytest.mark.parametrize(
    ("text", "ks"), [("2:5", [2, 3, 4, 5]), ("2:10:4", [2, 6, 10]), ("10,5,8,5", [5, 8, 10])]
)
def test_k_range_forms(text: str, ks: list[int]) -> None:
    assert parse_k_range(text) == ks


@pytest.mark.parametrize("text", ["1:4", "5", "a:b", "2:5:0", "4:3", "2:3:4:5"])
def test_bad_k_ranges_are_one_line_config_errors(text: str) -> None:
    with pytest.raises(ConfigError, match="K range"):
        parse_k_range(text)


def test_a_k_as_large_as_the_data_is_refused() -> None:
    with pytest.raises(ConfigError, match="below the number of images"):
        parse_k_range("2:300", n_samples=300)


def _key(method: str, k: int) -> str:
    cls = get_method(method)
    cfg = build_run_config(method, cls.Config, {"name": "fake", "n_clusters": k}, use_preset=False)
    m, data = cls(cfg), load_dataset(cfg.dataset)
    return weights_key(m.weights_name(), data, m.weights_key_config(data.n_clusters), 0)


@pytest.mark.usefixtures("isolated_env")
def test_k_is_in_the_weights_key_only_where_the_weights_depend_on_it() -> None:
    assert _key("cc", 3) != _key("cc", 4)  # CC trains its K-way cluster head in pretrain
    assert _key("uldc", 3) == _key("cc", 3)  # ULDC still shares CC's weights at equal K
    for method in ("aspc-da", "scan", "propos", "self-cc"):
        assert _key(method, 3) == _key(method, 4), method


def test_the_sweep_pipeline_pretrains_inside_the_loop_only_for_k_dependent_weights() -> None:
    from dcflow_pipelines.compile import validate
    from dcflow_pipelines.sweep import build_sweep
    from kfp import compiler

    def tasks(method: str, tmp: Path) -> tuple[set[str], set[str]]:
        path = tmp / f"{method}.yaml"
        compiler.Compiler().compile(build_sweep(method), str(path))
        import yaml

        docs = list(yaml.safe_load_all(path.read_text()))  # pipeline spec + platform spec
        validate(docs)
        doc = docs[0]
        loop = next(v for k, v in doc["components"].items() if "for-loop" in k)
        return set(doc["root"]["dag"]["tasks"]), set(loop["dag"]["tasks"])

    import tempfile

    with tempfile.TemporaryDirectory() as d:
        outer, inner = tasks("scan", Path(d))
        assert {"download-weights", "plan-k", "choose-k"} <= outer
        assert "sweep-point" in inner and "download-weights" not in inner
        outer, inner = tasks("cc", Path(d))
        assert "download-weights" not in outer
        assert {"point-config", "download-weights", "sweep-point"} <= inner


SMOKE = [a for o in get_method("aspc-da").smoke for a in ("--set", o)]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    """``dcflow sweep-k`` over K = 2..4 on fake, then ``dcflow run`` with n_clusters=auto."""
    root = tmp_path_factory.mktemp("sweep")
    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    mp.setenv("DCFLOW_CONFIG_DIR", str(root / "no-presets"))
    for var in ("MLFLOW_TRACKING_URI", "DCFLOW_WEIGHTS_STORE", "AWS_ENDPOINT_URL"):
        mp.delenv(var, raising=False)
    common = ["--dataset", "fake", *SMOKE, "--set", "threads=1", "--quiet"]
    try:
        code = main(["sweep-k", "aspc-da", "--k", "2:4", *common, "--json", "sweep.json"])
        assert code == 0
        auto = ["--set", "dataset.n_clusters=auto", "--set", "dataset.k_range=2:4"]
        assert main(["run", "aspc-da", *common, *auto, "--json", "run.json"]) == 0
    finally:
        mp.undo()
    return (
        root,
        json.loads((root / "sweep.json").read_text()),
        json.loads((root / "run.json").read_text()),
    )


def test_sweep_scores_every_k_shares_one_pretrain_and_logs_to_mlflow(
    sweep: tuple[Path, dict[str, Any], dict[str, Any]],
) -> None:
    from mlflow.tracking import MlflowClient

    root, summary, _ = sweep
    assert sorted(summary["table"]) == ["2", "3", "4"]
    assert [p["k"] for p in summary["points"]] == [2, 3, 4]
    for point in summary["points"]:
        assert len(point["sizes"]) == point["k"] and sum(point["sizes"]) == 300
    table = {int(k): v for k, v in summary["table"].items()}
    assert summary["k"] == choose_k(table).k  # what was printed is what the rule picks
    assert len(list((root / ".dcflow/weights/aspc-da").iterdir())) == 1  # one pretrain
    client = MlflowClient(f"sqlite:///{root / '.dcflow/mlflow.db'}")
    exp = client.get_experiment_by_name("dcflow")
    runs = client.search_runs([exp.experiment_id], "tags.`dcflow.kind` = 'sweep'")
    assert runs and runs[0].data.tags["chosen_k"] == str(summary["k"])
    history = client.get_metric_history(runs[0].info.run_id, "silhouette")
    assert sorted(m.step for m in history) == [2, 3, 4]
    assert {"sweep.json", "sweep_k.png"} <= {
        f.path for f in client.list_artifacts(runs[0].info.run_id)
    }


def test_n_clusters_auto_runs_the_sweep_then_the_pipeline_at_the_chosen_k(
    sweep: tuple[Path, dict[str, Any], dict[str, Any]],
) -> None:
    _, summary, run = sweep
    assert run["sweep"]["k"] == summary["k"]  # same data, seed and weights: the same choice
    assert len(run["cluster_sizes"]) == summary["k"]
    assert run["stages"]["pretrain"]["skipped"] is True  # the sweep's pretrain is reused


def test_auto_never_reaches_a_stage() -> None:
    from dcflow.config import DatasetConfig

    with pytest.raises(ConfigError, match="n_clusters=auto reached a stage"):
        load_dataset(DatasetConfig(name="fake", n_clusters="auto"))
