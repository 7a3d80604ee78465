"""Digits as a user's unlabeled image folder, and the checks of issue 21 against its true classes.

``write`` saves sklearn's digits as 8-bit PNG files: ``fit/`` (1,597 images) and ``new/`` (200
images held out at random, seed 123), the true class of every file in ``fit_labels.json`` /
``new_labels.json`` (never read by dcflow), and the fit images as ``fit.npz`` (the same uint8
pixels, with ``y``) for the npz run. ``check`` reads the runs' outputs: rows per file, the ARI
between the folder run and the npz run, the fit set's ACC, and the held-out images' ACC through
the fit run's cluster-to-class (Hungarian) map. Usage (docs/results.md shows the runs between)::

    python benchmarks/digits_folder.py write DIR
    python benchmarks/digits_folder.py check DIR folder.json npz.json new.csv
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np


def write(out: Path) -> None:
    """Write ``fit/``, ``new/``, the label files and ``fit.npz`` into ``out``."""
    from PIL import Image

    from dcflow.data.registry import get_dataset_loader

    x, y, _ = get_dataset_loader("digits")(None)
    x = np.round(np.asarray(x) * 255).astype(np.uint8)  # digits are x/16 floats; PNG is uint8
    y = np.asarray(y)
    held = np.sort(np.random.default_rng(123).choice(len(x), 200, replace=False))
    fit = np.setdiff1d(np.arange(len(x)), held)
    for name, rows in (("fit", fit), ("new", held)):
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        labels = {}
        for j, i in enumerate(rows):
            Image.fromarray(x[i], mode="L").save(folder / f"img{j:05d}.png")
            labels[f"img{j:05d}.png"] = int(y[i])
        (out / f"{name}_labels.json").write_text(json.dumps(labels))
    np.savez(out / "fit.npz", x=x[fit], y=y[fit])
    print(f"{len(fit)} fit and {len(held)} new images of {x.shape[1:]} in {out}")


def _clusters(path: Path) -> tuple[list[str], np.ndarray]:
    rows = list(csv.DictReader(path.open()))
    return [r.get("file", "") for r in rows], np.array([int(r["cluster"]) for r in rows])


def check(out: Path, folder_json: Path, npz_json: Path, new_csv: Path) -> dict[str, float]:
    """The acceptance figures of issue 21 (module docstring), printed and returned."""
    from sklearn.metrics import adjusted_rand_score

    from dcflow.clustering.metrics import cluster_metrics, hungarian_mapping

    folder, npz = json.loads(folder_json.read_text()), json.loads(npz_json.read_text())
    files, fol = _clusters(Path(folder["predictions"]))
    _, via_npz = _clusters(Path(npz["predictions"]))
    truth = json.loads((out / "fit_labels.json").read_text())
    y = np.array([truth[Path(f).name] for f in files])
    fit_acc = cluster_metrics(y, fol)["acc"]
    mapping = hungarian_mapping(y, fol)
    new_files, new = _clusters(new_csv)
    new_truth = json.loads((out / "new_labels.json").read_text())
    y_new = np.array([new_truth[Path(f).name] for f in new_files])
    figures = {
        "rows": float(len(files)),
        "distinct_files": float(len(set(files))),
        "ari_folder_vs_npz": float(adjusted_rand_score(fol, via_npz)),
        "fit_acc": float(fit_acc),
        "new_acc": float((np.array([mapping[c] for c in new]) == y_new).mean()),
        "new_rows": float(len(new_files)),
    }
    for key, value in figures.items():
        print(f"{key:20s} {value:.4f}")
    return figures


def main() -> None:
    """Command line (module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("write").add_argument("out", type=Path)
    chk = sub.add_parser("check")
    for name in ("out", "folder_json", "npz_json", "new_csv"):
        chk.add_argument(name, type=Path)
    args = parser.parse_args()
    if args.command == "write":
        write(args.out)
    else:
        check(args.out, args.folder_json, args.npz_json, args.new_csv)


if __name__ == "__main__":
    main()
