"""A task given a GPU that finds no CUDA fails in one line instead of training on the CPU."""

import pytest
import torch

from dcflow.errors import StageError
from dcflow.stages.common import REQUIRE_CUDA_ENV, select_device


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_gpu_task_without_cuda_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REQUIRE_CUDA_ENV, "1")
    with pytest.raises(StageError, match="given a GPU but torch .* finds no CUDA") as err:
        select_device("auto")
    assert "\n" not in str(err.value)


def test_cpu_task_keeps_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REQUIRE_CUDA_ENV, raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert select_device("auto").type == expected
