"""GPU placement. The CUDA tests skip cleanly on machines without a GPU."""

import pytest
import torch

from batchlab.execute.local import visible_gpu
from batchlab.spec import RunConfig, spec_from_dict
from batchlab.train.device import resolve_device
from batchlab.train.loop import train_run

needs_cuda = pytest.mark.cuda  # skipped without a CUDA GPU (tests/conftest.py)


def test_one_run_per_gpu_round_robin():
    assert visible_gpu(0, 1) is None and visible_gpu(3, 0) is None
    assert [visible_gpu(w, 2) for w in range(4)] == ["0", "1", "0", "1"]
    assert [visible_gpu(w, 2, "2,3") for w in range(3)] == ["2", "3", "2"]


def test_auto_device_follows_cuda_availability():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA device"):
            resolve_device("cuda")


@needs_cuda
def test_run_trains_on_cuda_and_records_the_gpu():
    s = spec_from_dict({"data": {"name": "synthetic", "shape": [1, 28, 28], "size": 512},
                        "model": {"name": "lenet5"},
                        "train": {"epochs": 1, "device": "cuda", "batch_size": 64}})
    events = []
    end = train_run(RunConfig(data=s.data, model=s.model, train=s.train), events.append)
    assert end.status == "completed", end.error
    assert events[0].environment["device"].startswith("cuda")
    assert "gpu" in events[0].environment
