"""Validate Kubernetes custom resources against a CRD's OpenAPI v3 schema, as strictly as
``kubectl apply --validate=strict``: types, required fields, enums, bounds and patterns (through
jsonschema), plus unknown fields, which the API server would silently prune. CEL rules
(``x-kubernetes-validations``) are not evaluated.

The schemas are the released CRDs' (tests/data/crds, made by tests/data/crds/extract.py).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import jsonschema

CRDS = Path(__file__).parent / "data" / "crds"
TRAINJOB = "trainjob-v2.3.0.json.gz"  # kubeflow/trainer v2.3.0, trainer.kubeflow.org/v1alpha1
PYTORCHJOB = "pytorchjob-v1.9.4.json.gz"  # kubeflow/training-operator v1.9.4, kubeflow.org/v1


def load(name: str) -> dict[str, Any]:
    """The stored CRD summary: group, kind, version and ``schema``."""
    with gzip.open(CRDS / name, "rt") as fh:
        doc: dict[str, Any] = json.load(fh)
    return doc


def unknown_fields(obj: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Paths of fields the schema does not declare (pruned by the API server)."""
    found: list[str] = []
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return found
    if isinstance(obj, dict) and "properties" in schema:
        props = schema["properties"]
        for key, value in obj.items():
            if key in props:
                found += unknown_fields(value, props[key], f"{path}.{key}")
            elif not schema.get("additionalProperties"):
                found.append(f"{path}.{key}")
    elif isinstance(obj, dict) and isinstance(schema.get("additionalProperties"), dict):
        for key, value in obj.items():
            found += unknown_fields(value, schema["additionalProperties"], f"{path}.{key}")
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(obj):
            found += unknown_fields(item, schema["items"], f"{path}[{i}]")
    return found


def errors(obj: dict[str, Any], crd: dict[str, Any]) -> list[str]:
    """Every reason ``obj`` would be refused (or pruned) as a resource of ``crd``."""
    out = []
    want = f"{crd['group']}/{crd['version']}"
    if obj.get("apiVersion") != want or obj.get("kind") != crd["kind"]:
        out.append(f"apiVersion/kind {obj.get('apiVersion')}/{obj.get('kind')} != {want}")
    validator = jsonschema.Draft7Validator(crd["schema"])
    out += [f"{'.'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(obj)]
    out += [f"{p}: unknown field" for p in unknown_fields(obj, crd["schema"])]
    return out
