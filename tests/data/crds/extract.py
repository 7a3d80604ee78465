"""Extract a CRD's openAPIV3Schema, without descriptions, into a gzipped JSON file for the tests.

Usage: python tests/data/crds/extract.py CRD.yaml VERSION OUT.json.gz
"""

from __future__ import annotations

import gzip
import json
import sys
from typing import Any

import yaml


def strip(node: Any) -> Any:
    """The schema without ``description`` keys (they are most of the bytes)."""
    if isinstance(node, dict):
        return {k: strip(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node


def main(crd_path: str, version: str, out: str) -> None:
    """Write the schema of ``version`` of the CRD at ``crd_path`` to ``out``."""
    docs = [d for d in yaml.safe_load_all(open(crd_path)) if d]
    crd = next(d for d in docs if d.get("kind") == "CustomResourceDefinition")
    ver = next(v for v in crd["spec"]["versions"] if v["name"] == version)
    doc = {
        "group": crd["spec"]["group"],
        "kind": crd["spec"]["names"]["kind"],
        "version": version,
        "schema": strip(ver["schema"]["openAPIV3Schema"]),
    }
    with gzip.open(out, "wt") as fh:
        json.dump(doc, fh, sort_keys=True, separators=(",", ":"))


if __name__ == "__main__":
    main(*sys.argv[1:])
