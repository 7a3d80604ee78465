from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import dcflow

SRC = Path(dcflow.__file__).parent
SOURCES = sorted(SRC.rglob("*.py"))


def _imported_roots(path: Path) -> set[str]:
    """Root package of every import anywhere in the file (nested ones included)."""
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_sources_found() -> None:
    names = {p.relative_to(SRC).as_posix() for p in SOURCES}
    expected = {"tracking/__init__.py", "storage/__init__.py", "config.py", "methods/aspc_da.py"}
    assert expected <= names


def test_walker_sees_nested_imports(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text(
        "import os\n"
        "def f():\n"
        "    if True:\n"
        "        from kfp import dsl\n"
        "    import mlflow.tracking\n"
        "class C:\n"
        "    def g(self):\n"
        "        import boto3\n"
        "from . import sibling\n"
    )
    assert _imported_roots(path) == {"os", "kfp", "mlflow", "boto3"}


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.relative_to(SRC).as_posix())
def test_library_never_imports_kfp(path: Path) -> None:
    assert "kfp" not in _imported_roots(path)


@pytest.mark.parametrize(
    ("package", "owner"),
    [("mlflow", "tracking"), ("boto3", "storage"), ("botocore", "storage")],
)
def test_service_clients_live_in_one_package(package: str, owner: str) -> None:
    users = {
        p.relative_to(SRC).parts[0].removesuffix(".py")
        for p in SOURCES
        if package in _imported_roots(p)
    }
    assert users == {owner}


def test_importing_every_module_leaves_kfp_unloaded() -> None:
    code = (
        "import importlib, json, pkgutil, sys\n"
        "import dcflow\n"
        "names = [m.name for m in pkgutil.walk_packages(dcflow.__path__, 'dcflow.')]\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps({'names': names, 'kfp': sorted(m for m in sys.modules"
        " if m == 'kfp' or m.startswith('kfp.'))}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {"dcflow.methods.aspc_da", "dcflow.stages.evaluate", "dcflow.tracking"} <= set(
        result["names"]
    )
    assert result["kfp"] == []


def test_components_and_pipelines_use_no_service_client() -> None:
    """Components and pipelines go through dcflow.storage / dcflow.tracking like everything else."""
    root = SRC.parents[1]
    shipped = sorted((root / "components").glob("*.py")) + sorted((root / "pipelines").glob("*.py"))
    assert any(p.name == "submit.py" for p in shipped)
    for path in shipped:
        assert not {"boto3", "botocore", "mlflow"} & _imported_roots(path), path.name


def test_the_kfp_layer_is_imported_at_one_entry_point_only() -> None:
    """``dcflow run`` reaches the pipelines through the cli package; no other library module may."""
    users = sorted(
        p.relative_to(SRC).as_posix()
        for p in SOURCES
        if {"dcflow_pipelines", "dcflow_components"} & _imported_roots(p)
    )
    assert users and all(u.startswith("cli/") for u in users), users


def _module_level_imports() -> dict[str, set[str]]:
    """dcflow module -> the dcflow modules it imports at module level (TYPE_CHECKING aside)."""
    names = {}
    for p in SOURCES:
        rel = p.relative_to(SRC.parent).with_suffix("")
        names[".".join(rel.parts).removesuffix(".__init__")] = p
    graph: dict[str, set[str]] = {}
    for name, path in names.items():
        found: set[str] = set()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name in names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for a in node.names:
                    full = f"{node.module}.{a.name}"
                    found |= {full} if full in names else {node.module} & set(names)
        graph[name] = found
    return graph


def test_no_import_cycle_inside_the_library() -> None:
    graph = _module_level_imports()
    assert "dcflow.stages.runner" in graph and graph["dcflow.stages.runner"]

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), list(graph[start])
        while todo:
            node = todo.pop()
            if node == goal:
                return True
            if node not in seen:
                seen.add(node)
                todo.extend(graph[node])
        return False

    cycles = sorted(m for m in graph if reaches(m, m))
    assert cycles == []


ALGORITHM_PACKAGES = ("methods", "train", "selection", "clustering", "losses")
DATA_LOADING = {"load_dataset", "get_dataset_loader", "read_npz", "fetch_npz", "split_rows"}
DATA_TYPES = {"dcflow.data", "dcflow.data.bank"}  # the Dataset type; batches of what it holds
FILE_READERS = {("np", "load"), ("numpy", "load"), ("torch", "load"), ("pd", "read_csv")}


def _loads_data(path: Path) -> list[str]:
    """Every place in a module that could load a dataset or read a file behind the stage's back."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.startswith("dcflow.data")
        ):
            names = {a.name for a in node.names}
            if node.module not in DATA_TYPES or names & DATA_LOADING:
                found.append(f"line {node.lineno}: from {node.module} import {sorted(names)}")
        elif isinstance(node, ast.Name) and node.id in DATA_LOADING:
            found.append(f"line {node.lineno}: {node.id}")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if (node.value.id, node.attr) in FILE_READERS or node.attr in DATA_LOADING:
                found.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id == "open":
                found.append(f"line {node.lineno}: open(...)")
    return found


@pytest.mark.parametrize(
    "path",
    [p for p in SOURCES if p.relative_to(SRC).parts[0] in ALGORITHM_PACKAGES],
    ids=lambda p: p.relative_to(SRC).as_posix(),
)
def test_algorithms_never_load_data(path: Path) -> None:
    """Methods and their building blocks get data from the stage runner only (labels removed).

    Only the ``Dataset`` type and the image bank over its arrays may be imported from
    ``dcflow.data``; no loader, no file read.
    """
    assert _loads_data(path) == []


def test_the_data_guard_sees_loading(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text(
        "import numpy as np\n"
        "from dcflow.data import Dataset, load_dataset\n"
        "from dcflow.data.builtin import load_digits\n"
        "from dcflow.data.bank import ImageBank\n"
        "def f(p):\n"
        "    x = np.load(p)\n"
        "    return open(p).read()\n"
    )
    found = _loads_data(path)
    assert len(found) == 4, found


def test_every_package_is_shipped() -> None:
    """A sub-package missing from pyproject's explicit list is absent from wheels and images."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    root = SRC.parent.parent
    listed = set(
        tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {".".join(p.parent.relative_to(SRC.parent).parts) for p in SRC.rglob("__init__.py")}
    assert found <= listed, sorted(found - listed)
