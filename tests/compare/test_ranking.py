"""Label-free ranking of a comparison's runs and its agreement with the ACC ranking."""

import csv
import math
from pathlib import Path

import pytest

from dcflow.compare import ranking
from dcflow.compare.report import Record, aggregate, records_from_runs, write_markdown


def _rec(
    method: str,
    seed: int,
    acc: float | None,
    sil: float | None,
    ch: float = 100.0,
    db: float = 1.0,
    dataset: str = "digits",
) -> Record:
    metrics = {"internal_calinski_harabasz": ch, "internal_davies_bouldin": db}
    metrics["internal_size_entropy"] = 0.9
    if sil is not None:
        metrics["internal_silhouette"] = sil
    if acc is not None:
        metrics["acc"] = acc
    return Record(method, dataset, seed, metrics, f"{method}{seed}")


def _grid(acc_sign: int = 1, labelled: bool = True) -> list[Record]:
    """3 methods x 2 seeds; silhouette, CH rise and DB falls with the run's index."""
    recs = []
    for i, (m, s) in enumerate((m, s) for m in ("a", "b", "c") for s in (0, 1)):
        acc = 0.5 + acc_sign * i / 20 if labelled else None
        recs.append(_rec(m, s, acc, sil=0.1 * i, ch=100.0 + i, db=2.0 - 0.1 * i))
    return recs


def _by_name(records: list[Record]) -> dict[str, ranking.Agreement]:
    found = ranking.agreement(records)
    assert found is not None
    return {a.criterion: a for a in found}


def test_rho_is_one_when_the_criteria_order_the_runs_as_acc_does() -> None:
    got = _by_name(_grid())
    for name in ("silhouette", "calinski_harabasz", "davies_bouldin"):
        assert got[name].rho_runs == pytest.approx(1.0) and got[name].n_runs == 6
        assert got[name].rho_means == pytest.approx(1.0) and got[name].n_means == 3


def test_rho_is_minus_one_when_reversed() -> None:
    got = _by_name(_grid(acc_sign=-1))
    assert got["silhouette"].rho_runs == pytest.approx(-1.0)
    assert got["silhouette"].rho_means == pytest.approx(-1.0)


def test_davies_bouldin_is_sign_flipped() -> None:
    # lower DB with higher ACC is agreement: +1, while a higher DB with higher ACC is -1
    recs = [_rec("m", s, acc=0.5 + s / 10, sil=0.2, db=3.0 - s) for s in range(4)]
    assert _by_name(recs)["davies_bouldin"].rho_runs == pytest.approx(1.0)
    recs = [_rec("m", s, acc=0.5 + s / 10, sil=0.2, db=1.0 + s) for s in range(4)]
    assert _by_name(recs)["davies_bouldin"].rho_runs == pytest.approx(-1.0)


def test_undefined_rho_is_printed_as_not_available() -> None:
    # silhouette constant over the runs; only two methods, so n=2 over the means
    recs = [_rec(m, s, acc=0.5 + s / 10 + (m == "b") / 5, sil=0.3) for m in "ab" for s in (0, 1)]
    got = _by_name(recs)
    assert math.isnan(got["silhouette"].rho_runs) and got["silhouette"].n_runs == 4
    assert math.isnan(got["calinski_harabasz"].rho_means) and got["calinski_harabasz"].n_means == 2
    assert math.isnan(ranking.spearman([1.0, 2.0], [2.0, 1.0])[0])
    md = "\n".join(ranking.markdown(recs))
    assert f"| silhouette | {ranking.NA} | {ranking.NA} |" in md
    assert "nan" not in md


def test_a_run_without_the_criterion_is_left_out_of_its_rho() -> None:
    recs = _grid()
    recs[0] = _rec("a", 0, acc=0.5, sil=None)
    got = _by_name(recs)
    assert got["silhouette"].n_runs == 5 and got["calinski_harabasz"].n_runs == 6
    md = "\n".join(ranking.markdown(recs))
    assert "[1/2 seeds]" in md  # method a's mean silhouette is over one seed only


def test_unlabelled_runs_are_ranked_without_a_rho(tmp_path: Path) -> None:
    recs = _grid(labelled=False)
    assert ranking.agreement(recs) is None
    picks = [u.method for u in ranking.method_means(recs)]
    assert picks == ["c", "b", "a"]  # highest mean silhouette first
    md = "\n".join(ranking.markdown(recs))
    assert ranking.NO_LABELS in md and "rho over runs" not in md
    assert "| 1 | c | on | 0 1 | 0.450 (1) | 104.5 (1) | 1.550 (1) | 0.900 | – |" in md
    with open(ranking.write_csv(recs, tmp_path / "ranking.csv"), newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["criterion"] for r in rows] == ["silhouette", "calinski_harabasz", "davies_bouldin"]
    assert all(r["rho_runs"] == "" and r["note"] == ranking.NO_LABELS for r in rows)


def test_ranking_csv_has_the_header_and_one_row_per_cell_and_criterion(tmp_path: Path) -> None:
    recs = _grid() + [_rec("a", 0, None, 0.2, dataset="folder:/x")]
    path = ranking.write_csv(recs, tmp_path / "ranking.csv")
    with open(path, newline="") as fh:
        header = next(csv.reader(fh))
    assert header == [
        *("dataset", "split", "eval_split", "criterion", "rho_runs", "n_runs"),
        *("rho_means", "n_means", "note"),
    ]
    with open(path, newline="") as fh:
        rows = {(r["dataset"], r["criterion"]): r for r in csv.DictReader(fh)}
    assert len(rows) == 6
    assert rows[("digits", "silhouette")]["rho_runs"] == "1.0000"
    assert rows[("digits", "silhouette")]["n_runs"] == "6"
    assert rows[("digits", "silhouette")]["note"] == ""
    assert rows[("folder:/x", "silhouette")]["note"] == ranking.NO_LABELS


def test_ties_share_the_best_rank() -> None:
    assert ranking.ranks([0.2, 0.5, 0.5, None], 1) == [3, 1, 1, None]
    assert ranking.ranks([0.2, 0.5, 0.5], -1) == [1, 2, 2]


def test_unlabelled_runs_reach_the_report_beside_labelled_ones(tmp_path: Path) -> None:
    def run(method: str, dataset: str, acc: float | None, start: int) -> dict:
        metrics = {"internal_silhouette": 0.1 * start, "internal_size_entropy": 1.0}
        return {
            "run_id": f"{method}{start}",
            "tags": {"method": method, "dataset": dataset, "seed": "0"},
            "metrics": metrics | ({"acc": acc, "nmi": acc, "ari": acc} if acc else {}),
            "start_time": start,
        }

    runs = [run("a", "digits", 0.8, 1), run("a", "folder:/imgs", None, 2)]
    runs.append(
        {"run_id": "f", "tags": {"method": "a", "dataset": "d"}, "metrics": {}, "start_time": 3}
    )
    records = records_from_runs(runs)  # the last one never reached evaluate: dropped
    assert [(r.dataset, "acc" in r.metrics) for r in records] == [
        ("digits", True),
        ("folder:/imgs", False),
    ]
    md = write_markdown(aggregate(records), tmp_path / "r.md", "# t", records).read_text()
    assert "| folder:/imgs | all | a | on | 0 | – | – | – | – |" in md
    labelled_row = next(ln for ln in md.splitlines() if "| digits |" in ln)
    assert "| 0.800 |" in labelled_row  # the main table comes first, unchanged
    section = md[md.index("## Label-free ranking") :]
    assert "### digits, fit split all" in section and "### folder:/imgs" in section
    assert ranking.NO_LABELS in section
