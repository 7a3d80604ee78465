"""Data-parallel equality: N processes under torchrun (gloo) against one with the same global batch.

Issue 22, item 2: NT-Xent, the CC losses and the ProPos/HaDis losses must agree to float tolerance,
their input gradients too, and optimiser steps (with batch norm over the global batch) must give
the same parameters.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dcflow.train import distributed as D

WORKER = Path(__file__).with_name("ddp_worker.py")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(tmp_path: Path, nproc: int) -> dict[str, torch.Tensor]:
    out = tmp_path / f"out{nproc}.pt"
    cmd = [sys.executable, str(WORKER), str(out)]
    if nproc > 1:
        cmd = [
            sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
            "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), *cmd[1:],
        ]  # fmt: skip
    env = {"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, torch.Tensor] = torch.load(out)
    return result


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:
    tmp = tmp_path_factory.mktemp("ddp")
    return _run(tmp, 1), _run(tmp, 2)


def test_world_sizes(runs: tuple[dict, dict]) -> None:
    one, two = runs
    assert one["world"] == 1 and two["world"] == 2


@pytest.mark.parametrize(
    "name",
    [
        "ntxent_sym", "ntxent_one", "cc_instance", "cc_cluster", "align", "psl", "hsd", "scan",
        "uldc", "selflabel", "selflabel_one_shard", "ruc_x", "ruc_u", "ruc_s",
    ],
)  # fmt: skip
def test_loss_equals_one_process(runs: tuple[dict, dict], name: str) -> None:
    one, two = runs
    assert torch.isfinite(one[name]) and one[name].abs() > 1e-3
    torch.testing.assert_close(two[name], one[name], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["grad_a", "grad_b", "grad_p1", "grad_p2", "grad_la", "grad_ls"])
def test_input_gradients_equal_one_process(runs: tuple[dict, dict], name: str) -> None:
    one, two = runs
    assert one[name].abs().max() > 1e-4
    torch.testing.assert_close(two[name], one[name], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("kind", ["sgd", "adam", "ruc"])
def test_optimiser_steps_give_the_same_parameters(runs: tuple[dict, dict], kind: str) -> None:
    one, two = runs
    keys = [k for k in one if k.startswith(f"{kind}.")]
    assert any("running_var" in k for k in keys)  # batch norm is in the network
    for k in keys:
        torch.testing.assert_close(two[k], one[k], rtol=1e-4, atol=1e-5, msg=k)


@pytest.mark.parametrize("trainer", ["simclr", "scan_train", "selflabel_train"])
def test_an_epoch_with_random_views_gives_the_one_process_parameters(
    runs: tuple[dict, dict], trainer: str
) -> None:
    """Each process keeps its shard of views drawn for the global batch: the same training."""
    one, two = runs
    keys = [k for k in one if k.startswith(f"{trainer}.") and one[k].is_floating_point()]
    assert any("running_var" in k for k in keys)
    for k in keys:
        torch.testing.assert_close(two[k], one[k], rtol=1e-4, atol=1e-5, msg=k)


def test_estep_rows_gather_to_the_one_process_pool(runs: tuple[dict, dict]) -> None:
    """11 rows over 2 processes (6 + 5): gathered embeddings, labels and centres as one process."""
    one, two = runs
    assert two["estep_z"].shape == (11, 3)
    assert torch.allclose(one["estep_z"], two["estep_z"], atol=1e-6)
    assert torch.equal(one["estep_labels"], two["estep_labels"])
    assert torch.allclose(one["estep_centers"], two["estep_centers"], atol=1e-6)


def test_local_contrast_is_not_the_global_loss() -> None:
    """The test can fail: contrasting each half alone gives another NT-Xent than the whole batch."""
    from dcflow.losses.ntxent import ntxent_loss

    g = torch.Generator().manual_seed(0)
    a = torch.nn.functional.normalize(torch.randn(16, 8, generator=g), dim=1)
    b = torch.nn.functional.normalize(torch.randn(16, 8, generator=g), dim=1)
    whole = ntxent_loss(a, b, 0.5)
    halves = (ntxent_loss(a[:8], b[:8], 0.5) + ntxent_loss(a[8:], b[8:], 0.5)) / 2
    assert (whole - halves).abs() > 1e-3


def test_helpers_are_identity_without_a_group() -> None:
    x = torch.randn(4, 3)
    assert D.world() == D.World(0, 1)
    assert D.gather_batch(x)[0] is x and D.gather_batch(x)[1] == 0
    assert D.shard(torch.arange(6)).tolist() == list(range(6))
    assert D.process_rows(5) == slice(0, 5) and D.gather_rows(x, 4) is x
    net = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.BatchNorm1d(3))
    assert D.prepare(net, torch.device("cpu")) is net
    assert isinstance(net[1], torch.nn.BatchNorm1d)
