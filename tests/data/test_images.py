"""folder: and csv: sources: decoding, the content-keyed cache, labels, and every bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dcflow.config import DatasetConfig
from dcflow.data import load_dataset
from dcflow.data.images import absolute_source
from dcflow.errors import DataError


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DCFLOW_CACHE_DIR", str(tmp_path / "cache"))


def _png(path: Path, value: int, size: tuple[int, int] = (12, 8), mode: str = "L") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    shape = (size[1], size[0]) if mode == "L" else (size[1], size[0], 3)
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(path)
    return path


def _load(name: str, **opts: object) -> object:
    return load_dataset(DatasetConfig.model_validate({"name": name, "n_clusters": 2, **opts}))


def _folder(root: Path) -> Path:
    for i in range(3):
        _png(root / "cats" / f"c{i}.png", i)
        _png(root / "dogs" / f"d{i}.jpg", 10 + i)
    return root


def test_a_folder_decodes_once_and_is_reused_from_the_cache(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    root = _folder(tmp_path / "imgs")
    data = _load(f"folder:{root}")
    assert data.x.shape == (6, 1, 8, 12) and data.x.dtype == np.uint8 and data.y is None
    assert list(data.files) == [f"cats/c{i}.png" for i in range(3)] + [
        f"dogs/d{i}.jpg" for i in range(3)
    ]
    png = np.asarray(Image.open(root / "cats" / "c1.png"))
    assert np.array_equal(data.x[1, 0], png)
    assert "reading 6 images" in capsys.readouterr().err
    again = _load(f"folder:{root}")
    assert "reading" not in capsys.readouterr().err  # the cache, not a second decode
    assert np.array_equal(again.x, data.x)
    _png(root / "cats" / "c1.png", 99)  # an edited file is a new key
    assert not np.array_equal(_load(f"folder:{root}").x, data.x)


def test_labels_only_from_subfolders_when_asked(tmp_path: Path) -> None:
    root = _folder(tmp_path / "imgs")
    data = _load(f"folder:{root}", labels_from="subfolders")
    assert data.y.tolist() == [0, 0, 0, 1, 1, 1]
    _png(root / "loose.png", 5)
    with pytest.raises(DataError, match="directly in"):
        _load(f"folder:{root}", labels_from="subfolders")


def test_sizes_modes_and_resizing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = tmp_path / "mixed"
    _png(root / "a.png", 1, (12, 8))
    _png(root / "b.png", 2, (20, 10), mode="RGB")
    with pytest.raises(DataError, match="2 different sizes.*dataset.image_size"):
        _load(f"folder:{root}")
    data = _load(f"folder:{root}", image_size=8)
    assert data.x.shape == (2, 3, 8, 8)  # one colour image: all read as RGB, said so
    assert "1 grey and 1 colour images" in capsys.readouterr().err
    grey = _load(f"folder:{root}", image_size=8, channels=1, resize="pad")
    assert grey.x.shape == (2, 1, 8, 8)
    assert grey.x[1, 0, 0].max() == 0  # 20x10 padded to 8x8: black rows above and below


def test_unreadable_and_duplicate_files_are_skipped_and_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    root = _folder(tmp_path / "imgs")
    (root / "cats" / "broken.png").write_bytes(b"not a png")
    (root / "dogs" / "copy.jpg").write_bytes((root / "dogs" / "d0.jpg").read_bytes())
    data = _load(f"folder:{root}")
    err = capsys.readouterr().err
    assert data.n == 6
    assert "unreadable: skipped 1 file(s), e.g. cats/broken.png" in err
    assert "duplicates: skipped 1 file(s), e.g. dogs/d0.jpg (same bytes as dogs/copy.jpg)" in err


def test_a_csv_file_list_with_named_labels(tmp_path: Path) -> None:
    root = _folder(tmp_path / "imgs")
    listing = root / "list.csv"
    listing.write_text("path,label\ncats/c0.png,cat\ndogs/d0.jpg,dog\ncats/c2.png,cat\n")
    data = _load(f"csv:{listing}")
    assert list(data.files) == ["cats/c0.png", "dogs/d0.jpg", "cats/c2.png"]
    assert data.y.tolist() == [0, 1, 0]


@pytest.mark.parametrize(
    ("setup", "match"),
    [
        (lambda r: r.mkdir(), "holds no images"),
        (lambda r: (r.mkdir(), (r / "x.png").write_bytes(b"junk")), "none of the 1 files"),
        (lambda r: None, "image folder not found"),
    ],
)
def test_bad_folders_are_one_data_error(tmp_path: Path, setup: object, match: str) -> None:
    root = tmp_path / "bad"
    setup(root)  # type: ignore[operator]
    with pytest.raises(DataError, match=match):
        _load(f"folder:{root}")
    assert not (tmp_path / "cache" / "images").exists() or not any(
        (tmp_path / "cache" / "images").iterdir()
    )  # nothing half-written


def test_bad_csv_and_misplaced_options(tmp_path: Path) -> None:
    listing = tmp_path / "l.csv"
    listing.write_text("name\nx.png\n")
    with pytest.raises(DataError, match="needs a 'path' column"):
        _load(f"csv:{listing}")
    with pytest.raises(DataError, match="file list not found"):
        absolute_source(f"csv:{tmp_path / 'none.csv'}")
    with pytest.raises(ValueError, match="apply to folder: and csv: data only"):
        DatasetConfig(name="digits", image_size=32)
