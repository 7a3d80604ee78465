"""The bad-input matrix: every error a user can cause is one line, a documented code, no traceback.

Each case runs ``dcflow`` as the user would (in process, the stages as kfp.local subprocesses) and
checks: the exit code of its class (2 config, 3 data, 4 weights, 5 service), exactly one
``dcflow: error:`` line naming the problem, no traceback anywhere on stderr, no ``--json``
summary, and no weights published from bad data (nothing a later run would trust).
"""

import http.server
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from dcflow.cli import main

TINY = ["--set", "dataset.limit=120", "--set", "pretrain.hidden_dims=[32,32]", "--set",
        "pretrain.epochs=1", "--set", "kmeans.n_init=1", "--set", "refine.max_iter=1",
        "--set", "threads=1"]  # fmt: skip


class _Refusing(http.server.BaseHTTPRequestHandler):
    def _reply(self) -> None:
        self.send_response(403)
        self.end_headers()
        self.wfile.write(b"<Error><Code>InvalidAccessKeyId</Code></Error>")

    do_GET = do_POST = do_PUT = do_HEAD = _reply  # noqa: N815

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def refusing() -> Iterator[str]:
    """A server that refuses every request (wrong credentials / no permission)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


NO_PATHS = "name\nx.png\n"  # a file list whose header lacks the path column


def _images(tmp: Path, sizes: list[int | str]) -> Path:
    """A folder of grey PNGs of these sizes (``"junk"``: a corrupt file named .png)."""
    from PIL import Image

    root = tmp / "imgs"
    root.mkdir()
    for i, size in enumerate(sizes):
        if size == "junk":
            (root / f"{i}.png").write_bytes(b"not a png")
        else:
            Image.fromarray(np.full((int(size), int(size)), 9 * i, np.uint8)).save(
                root / f"{i}.png"
            )
    return root


def _npz(tmp: Path, **arrays: np.ndarray) -> str:
    path = tmp / "data.npz"
    np.savez(path, **arrays)
    return f"npz:{path}"


def _digits_like(n: int = 40) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"x": rng.integers(0, 255, (n, 8, 8), dtype=np.uint8), "y": np.arange(n) % 10}


Case = Callable[[Path], list[str]]

CASES: dict[str, tuple[Case, int, str]] = {
    # CLI and config
    "unknown method": (lambda t: ["run", "nope"], 2, "unknown method 'nope'"),
    "unknown dataset": (lambda t: ["run", "aspc-da", "--dataset", "nope"], 2, "unknown dataset"),
    "unknown command": (lambda t: ["nope"], 2, "invalid choice: 'nope'"),
    "unknown split": (lambda t: ["run", "aspc-da", "--split", "x"], 2, "invalid choice: 'x'"),
    "unknown config key": (lambda t: ["run", "aspc-da", "--set", "pretrain.nope=1"], 2, "nope"),
    "bad config type": (lambda t: ["run", "aspc-da", "--set", "pretrain.epochs=abc"], 2, "epochs"),
    "bad config range": (lambda t: ["run", "aspc-da", "--set", "pretrain.lr=-1"], 2, "lr"),
    "bad --set syntax": (lambda t: ["run", "aspc-da", "--set", "novalue"], 2, "key=value"),
    "missing --config": (lambda t: ["run", "aspc-da", "--config", "no.yaml"], 2, "not found"),
    "malformed --config": (
        lambda t: ["run", "aspc-da", "--config", str(_write(t / "c.yaml", "a: [1,"))],
        2,
        "yaml",
    ),
    "negative seed": (lambda t: ["run", "aspc-da", "--seed", "-1"], 2, "seed"),
    "--nproc for a one-process method": (
        lambda t: ["run", "aspc-da", "--nproc", "2"],
        2,
        "applies to: cc",
    ),
    "--nproc 0": (lambda t: ["run", "cc", "--nproc", "0"], 2, "nproc"),
    "bad --tag": (lambda t: ["run", "aspc-da", "--tag", "novalue"], 2, "KEY=VALUE"),
    "bad plugin": (
        lambda t: ["compare", "--methods", "aspc-da", "--seeds", "a", "--out", "o"],
        2,
        "--seeds",
    ),
    # your own images (folder: / csv:): exit 3, one line, nothing cached or written
    "missing folder": (
        lambda t: ["run", "aspc-da", "--dataset", f"folder:{t / 'none'}", *TINY],
        3,
        "image folder not found",
    ),
    "empty folder": (
        lambda t: ["run", "aspc-da", "--dataset", f"folder:{_images(t, [])}", *TINY],
        3,
        "holds no images",
    ),
    "only corrupt images": (
        lambda t: ["run", "aspc-da", "--dataset", f"folder:{_images(t, ['junk'])}", *TINY],
        3,
        "none of the 1 files",
    ),
    "mixed image sizes": (
        lambda t: ["run", "aspc-da", "--dataset", f"folder:{_images(t, [8, 12])}", *TINY],
        3,
        "dataset.image_size",
    ),
    "file list without paths": (
        lambda t: ["run", "aspc-da", "--dataset", "csv:" + str(_write(t / "l.csv", NO_PATHS))],
        3,
        "needs a 'path' column",
    ),
    # data
    "missing npz": (
        lambda t: ["run", "aspc-da", "--dataset", "npz:/nonexistent.npz"],
        3,
        "not found",
    ),
    "corrupt npz": (
        lambda t: ["run", "aspc-da", "--dataset", f"npz:{_write(t / 'c.npz', 'zz')}", *TINY],
        3,
        "npz",
    ),
    "npz without x": (
        lambda t: ["run", "aspc-da", "--dataset", _npz(t, y=np.arange(3)), *TINY],
        3,
        "x",
    ),
    "mis-shaped x": (
        lambda t: ["run", "aspc-da", "--dataset", _npz(t, x=np.zeros(50, np.uint8)), *TINY],
        3,
        "shape",
    ),
    "NaN pixels": (
        lambda t: [
            "run",
            "aspc-da",
            "--dataset",
            _npz(t, x=np.full((30, 8, 8), np.nan, np.float32)),
            *TINY,
        ],
        3,
        "NaN",
    ),
    "y length mismatch": (
        lambda t: [
            "run",
            "aspc-da",
            "--dataset",
            _npz(t, x=_digits_like()["x"], y=np.arange(7)),
            *TINY,
        ],
        3,
        "y has shape",
    ),
    "one class": (
        lambda t: [
            "run",
            "aspc-da",
            "--dataset",
            _npz(t, x=_digits_like()["x"], y=np.zeros(40, int)),
            *TINY,
        ],
        3,
        "class",
    ),
    "fewer samples than clusters": (
        lambda t: [
            "run",
            "aspc-da",
            "--dataset",
            _npz(t, x=_digits_like(6)["x"]),
            "--set",
            "dataset.n_clusters=10",
            *TINY,
        ],
        3,
        "fewer",
    ),
    "pickled npz": (
        lambda t: ["run", "aspc-da", "--dataset", _npz(t, x=np.array([object()] * 4)), *TINY],
        3,
        "pickle",
    ),
    "missing data dir": (
        lambda t: ["run", "aspc-da", "--dataset", "usps", "--data-dir", str(t / "none"), *TINY],
        3,
        "does not exist",
    ),
    # services
    "MLflow unreachable": (lambda t: ["run", "aspc-da", *TINY], 5, "unreachable"),
    "MLflow refusing": (lambda t: ["run", "aspc-da", *TINY], 5, "MLflow"),
    "S3 unreachable": (lambda t: ["run", "aspc-da", "--weights-store", "s3://b/w", *TINY], 5, "S3"),
    "S3 wrong credentials": (
        lambda t: ["run", "aspc-da", "--weights-store", "s3://b/w", *TINY],
        5,
        "S3",
    ),
}


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _check(capfd: pytest.CaptureFixture[str], args: list[str], code: int, needle: str,
           tmp: Path) -> None:  # fmt: skip
    rc = main([*args, "--json", "s.json", "--quiet"] if args[0] == "run" else args)
    err = capfd.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("dcflow: error:")]
    assert rc == code, err
    assert len(lines) == 1, err
    assert needle.lower() in lines[0].lower(), lines[0]
    assert "Traceback" not in err
    assert not (tmp / "s.json").exists()
    assert not list((tmp / ".dcflow" / "weights").rglob("*.sha256"))
    assert not list((tmp / ".dcflow" / "cache").rglob("*.npz"))  # no decoded images cached


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, refusing: str,
    capfd: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    if name == "MLflow unreachable":
        monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    if name == "MLflow refusing":
        monkeypatch.setenv("MLFLOW_TRACKING_URI", refusing)
    if name == "S3 unreachable":
        monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    if name == "S3 wrong credentials":
        monkeypatch.setenv("AWS_ENDPOINT_URL", refusing)
    make, code, needle = CASES[name]
    _check(capfd, make(tmp_path), code, needle, tmp_path)


@pytest.fixture(scope="module")
def cached_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A weights store holding the tiny digits run's pretrained weights."""
    root = tmp_path_factory.mktemp("store")
    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    try:
        assert main(["run", "aspc-da", *TINY, "--quiet"]) == 0
    finally:
        mp.undo()
    return root / ".dcflow" / "weights"


def _tamper(store: Path, how: str) -> None:
    (weights,) = store.rglob("weights.pt")
    sidecar = weights.with_name(weights.name + ".sha256")
    if how == "wrong sha256":
        sidecar.write_text("0" * 64 + "\n")
        return
    if how == "truncated":
        weights.write_bytes(weights.read_bytes()[:100])
    else:  # a valid torch file that is not a state dict
        torch.save([1, 2, 3], weights)
    from dcflow.storage import sha256_file

    sidecar.write_text(sha256_file(weights) + "\n")


@pytest.mark.parametrize(
    ("how", "needle"),
    [("wrong sha256", "sha256"), ("truncated", "cannot load"), ("not a state dict", "state dict")],
)
def test_bad_weights_are_never_used(
    how: str, needle: str, cached_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    store = tmp_path / "weights"
    shutil.copytree(cached_store, store)
    _tamper(store, how)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    args = ["run", "aspc-da", *TINY, "--weights-store", str(store), "--json", "s.json", "--quiet"]
    rc = main(args)
    err = capfd.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("dcflow: error:")]
    assert rc == 4 and len(lines) == 1 and needle in lines[0], err
    assert "Traceback" not in err and not (tmp_path / "s.json").exists()
