"""The image bank: uint8 pools served as float32 batches, streamed with prefetch off the device."""

from __future__ import annotations

import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from dcflow.config import DatasetConfig
from dcflow.data import load_dataset
from dcflow.data.bank import ImageBank, stream
from dcflow.data.npz import mmap_member
from dcflow.models.cluster import ModelConfig, build_model, channel_stats
from dcflow.progress import Curves
from dcflow.train.simclr import SimCLRConfig, simclr_train

CPU = torch.device("cpu")


def _pool(n: int = 50, shape: tuple[int, ...] = (6, 5, 3)) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, *shape), dtype=np.uint8)


def _reference(x_nhwc: np.ndarray) -> torch.Tensor:
    """What the loader used to hold: the whole pool as float32 [N, C, H, W] / 255."""
    return torch.from_numpy(x_nhwc.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255.0))


@pytest.mark.parametrize("resident", [True, False])
def test_batches_equal_the_float_pool_bit_for_bit(resident: bool) -> None:
    raw = _pool()
    bank = ImageBank(raw.transpose(0, 3, 1, 2), CPU, resident=resident)  # a strided view
    ref = _reference(raw)
    assert bank.shape == ref.shape and len(bank) == 50
    idx = torch.tensor([7, 0, 49, 7])
    for key, want in [
        (idx, ref[idx]),
        (idx.numpy(), ref[idx]),
        (slice(10, 20), ref[10:20]),
        (3, ref[3]),
        (torch.arange(50) % 3 == 0, ref[torch.arange(50) % 3 == 0]),
        (idx.reshape(2, 2), ref[idx.reshape(2, 2)]),
    ]:
        got = bank[key]
        assert got.dtype == torch.float32 and torch.equal(got, want)
    assert torch.equal(torch.cat(list(bank.split(16))), ref)


def test_a_large_pool_stays_uint8_and_a_small_one_is_converted_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import dcflow.data.bank as bank_mod

    raw = _pool()
    small = ImageBank(raw.transpose(0, 3, 1, 2), CPU)
    monkeypatch.setattr(bank_mod, "FLOAT_BYTES", raw.size)  # the float copy no longer fits
    large = ImageBank(raw.transpose(0, 3, 1, 2), CPU)
    assert small._store.dtype == torch.float32 and large._store.dtype == torch.uint8
    idx = torch.tensor([4, 9, 1])
    assert torch.equal(small[idx], large[idx]) and torch.equal(small[idx], _reference(raw)[idx])


def test_float_pools_pass_through_and_the_flat_view_flattens() -> None:
    x = np.random.default_rng(1).random((9, 1, 4, 4)).astype(np.float32)
    bank = ImageBank(x, CPU)
    assert torch.equal(bank[slice(None)], torch.from_numpy(x))
    flat = bank.reshape(9, -1)
    assert flat.shape == (9, 16) and torch.equal(
        flat[torch.tensor([2])], torch.from_numpy(x[2:3]).flatten(1)
    )
    assert bank.shape == (9, 1, 4, 4)  # the view shares the storage, not the flag
    with pytest.raises(ValueError, match="reshapes to"):
        bank.reshape(9, 4)


def test_stream_prefetches_on_a_worker_thread_and_keeps_order() -> None:
    raw = _pool(40)
    bank = ImageBank(raw.transpose(0, 3, 1, 2), CPU, resident=False)
    parts = list(torch.randperm(40, generator=torch.Generator().manual_seed(0)).split(8))
    threads: set[str] = set()
    seen = []
    for idx, xb in stream(bank, iter(parts)):
        threads |= {t.name for t in threading.enumerate()}
        seen.append(idx)
        assert torch.equal(xb, _reference(raw)[idx])
    assert [s.tolist() for s in seen] == [p.tolist() for p in parts]
    assert any(name.startswith("dcflow-prefetch") for name in threads)
    resident = ImageBank(raw.transpose(0, 3, 1, 2), CPU)
    assert resident.resident and [i.tolist() for i, _ in resident.stream(parts)] == [
        p.tolist() for p in parts
    ]


def test_chunked_channel_stats_match_the_whole_pool() -> None:
    raw = _pool(300)
    ref = _reference(raw)
    mean, std = channel_stats(ImageBank(raw.transpose(0, 3, 1, 2), CPU))
    want_mean, want_std = channel_stats(ref)
    assert torch.allclose(mean, want_mean, atol=1e-6) and torch.allclose(std, want_std, atol=1e-6)


def test_simclr_trains_the_same_from_a_streamed_pool() -> None:
    raw = _pool(64, (8, 8, 1))
    cfg = SimCLRConfig(epochs=2, batch_size=16, optimizer="adam", lr=1e-3)
    out = []
    for resident in (True, False):
        torch.manual_seed(0)
        model = build_model(ModelConfig(backbone="small_cnn", widths=[4, 8]), (1, 8, 8), 3, 0)
        bank = ImageBank(raw.transpose(0, 3, 1, 2), CPU, resident=resident)
        m = simclr_train(model, bank, cfg, torch.Generator().manual_seed(0), Curves())
        out.append((m["simclr_loss_first"], m["simclr_loss_last"], model.state_dict()))
    assert out[0][:2] == out[1][:2]
    assert all(torch.equal(out[0][2][k], out[1][2][k]) for k in out[0][2])


def test_an_uncompressed_npz_is_memory_mapped(tmp_path: Path) -> None:
    raw = _pool(20)
    np.savez(tmp_path / "plain.npz", x=raw, y=np.arange(20) % 4)
    np.savez_compressed(tmp_path / "packed.npz", x=raw, y=np.arange(20) % 4)
    mapped = mmap_member(tmp_path / "plain.npz", "x")
    assert isinstance(mapped, np.memmap) and np.array_equal(mapped, raw)
    assert mmap_member(tmp_path / "packed.npz", "x") is None
    plain = load_dataset(DatasetConfig(name=f"npz:{tmp_path / 'plain.npz'}"))
    packed = load_dataset(DatasetConfig(name=f"npz:{tmp_path / 'packed.npz'}"))
    base = plain.x
    while base.base is not None and not isinstance(base, np.memmap):
        base = base.base
    assert isinstance(base, np.memmap)  # the pool was not read into memory
    assert np.array_equal(plain.x, packed.x) and plain.fingerprint() == packed.fingerprint()
    with zipfile.ZipFile(tmp_path / "plain.npz") as zf:
        assert zf.getinfo("x.npy").compress_type == zipfile.ZIP_STORED


def test_fingerprint_does_not_depend_on_the_chunk() -> None:
    data = load_dataset(DatasetConfig(name="digits", limit=100))
    assert data.fingerprint(chunk=7) == data.fingerprint()
