"""Checkpoint writes that hit a full disk: no partial file left, the previous one kept, and
the run stops as interrupted with the reason (resumable), flagged to stop the sweep."""

import errno

import pytest
import torch

from batchlab.events import MetricRows
from batchlab.spec import RunConfig, spec_from_dict
from batchlab.train.checkpoint import load_checkpoint, save_checkpoint
from batchlab.train.loop import train_run


def test_full_disk_checkpoint_leaves_no_temporary_file(small_fs):
    folder = small_fs(64)
    path = folder / "run.pt"
    save_checkpoint(path, {"run_id": "r", "step": 1, "w": torch.zeros(10)})
    with pytest.raises(OSError) as err:
        save_checkpoint(path, {"run_id": "r", "step": 2, "w": torch.zeros(100_000)})
    assert err.value.errno == errno.ENOSPC
    assert sorted(p.name for p in folder.iterdir()) == ["run.pt"]  # no run.pt.tmp<pid>
    assert load_checkpoint(path, "r")["step"] == 1  # the previous checkpoint is intact


def test_run_whose_checkpoint_hits_a_full_disk_stops_interrupted(small_fs):
    folder = small_fs(32)  # smaller than one checkpoint (weights + momentum, ~70 KB)
    s = spec_from_dict({"data": {"name": "synthetic", "shape": [64], "classes": 3, "size": 300},
                        "model": {"name": "mlp", "hidden": [128]},
                        "train": {"epochs": 3, "batch_size": 32, "threads": 1}})
    events = []
    end = train_run(RunConfig(data=s.data, model=s.model, train=s.train), events.append,
                    checkpoint_path=folder / "run.pt")
    assert end.status == "interrupted" and end.fatal
    assert "is full" in end.error and "free" in end.error and str(folder) in end.error
    spe = end.summary["steps_per_epoch"]
    assert end.steps == spe  # stopped at the first checkpoint; every row up to it was sent
    rows = [r for e in events if isinstance(e, MetricRows) for r in e.rows]
    assert max(r[1] for r in rows) == spe
    assert list(folder.iterdir()) == []
