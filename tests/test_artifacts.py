from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dcflow import artifacts as art
from dcflow.errors import DataError


def test_atomic_path_renames_on_success(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "f.txt"
    with art.atomic_path(target) as tmp:
        assert tmp != target and tmp.parent == target.parent
        tmp.write_text("done")
        assert not target.exists()
    assert target.read_text() == "done"
    assert [p.name for p in target.parent.iterdir()] == ["f.txt"]


def test_atomic_path_leaves_nothing_on_exception(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    with pytest.raises(RuntimeError), art.atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_keeps_the_old_file_on_exception(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), art.atomic_path(target) as tmp:
        tmp.write_text("new")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]


def test_npy_round_trip(tmp_path: Path) -> None:
    arr = np.arange(12, dtype=np.int64).reshape(3, 4)
    path = art.save_npy(tmp_path, art.LABELS, arr)
    assert path == tmp_path.resolve() / art.LABELS
    back = art.load_npy(tmp_path, art.LABELS)
    assert back.dtype == np.int64 and np.array_equal(back, arr)


def test_npz_round_trip(tmp_path: Path) -> None:
    art.save_npz(
        tmp_path,
        art.SELECTED,
        indices=np.array([0, 2], dtype=np.int64),
        weights=np.array([1, 0, 1], dtype=np.float32),
        threshold=np.float32(0.5),
    )
    back = art.load_npz(tmp_path, art.SELECTED)
    assert set(back) == {"indices", "weights", "threshold"}
    assert back["weights"].dtype == np.float32 and back["weights"].tolist() == [1, 0, 1]
    assert back["threshold"].shape == () and float(back["threshold"]) == 0.5


def test_json_round_trip_with_numpy_values(tmp_path: Path) -> None:
    obj = {"a": np.float32(0.5), "b": np.arange(3), "c": {"d": [1, "x"]}}
    art.save_json(tmp_path, art.METRICS, obj)
    assert art.load_json(tmp_path, art.METRICS) == {"a": 0.5, "b": [0, 1, 2], "c": {"d": [1, "x"]}}


def test_json_refuses_unserialisable_without_leaving_a_file(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        art.save_json(tmp_path, art.METRICS, {"a": object()})
    assert list(tmp_path.iterdir()) == []


def test_jsonl_writes_one_object_per_line(tmp_path: Path) -> None:
    art.append_jsonl(tmp_path, art.HISTORY, [{"t": 0}, {"t": np.int64(1)}])
    assert (tmp_path / art.HISTORY).read_text() == '{"t": 0}\n{"t": 1}\n'


@pytest.mark.parametrize("name", ["../x", "a/../../x", "/etc/passwd"])
def test_safe_join_rejects_escapes(tmp_path: Path, name: str) -> None:
    with pytest.raises(DataError, match="escapes"):
        art.safe_join(tmp_path / "root", name)


def test_safe_join_accepts_nested_names(tmp_path: Path) -> None:
    assert art.safe_join(tmp_path, "a/b.npy") == tmp_path.resolve() / "a" / "b.npy"
    assert art.safe_join(tmp_path, "a/../b.npy") == tmp_path.resolve() / "b.npy"


@pytest.mark.parametrize(
    "load", [art.load_npy, art.load_npz, art.load_json], ids=["npy", "npz", "json"]
)
def test_load_of_missing_file(tmp_path: Path, load: object) -> None:
    with pytest.raises(DataError, match="missing artifact file"):
        load(tmp_path, "nope")  # type: ignore[operator]


def test_artifact_names_are_distinct() -> None:
    names = [v for k, v in vars(art).items() if k.isupper() and isinstance(v, str)]
    assert len(names) == len(set(names))
    assert {art.EMBEDDINGS, art.CENTERS, art.LABELS, art.SELECTED} <= set(names)
