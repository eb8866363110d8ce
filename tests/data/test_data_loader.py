"""What every batchlab DataLoader shares (``batchlab.data.loader``): loader processes that die
with the process that started them, and the one place they cannot be started (daemonic
processes), which the data's notes name."""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import signal
import sys
from pathlib import Path

import pytest
import torch
from image_writers import write_separable_folder
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset

from batchlab.data.batches import StreamBatches
from batchlab.data.loader import usable_workers, worker_options
from batchlab.data.stream import open_stream
from batchlab.spec import DataSpec

PR_GET_PDEATHSIG = 2


class WhoLoads(TorchDataset):
    """Each sample: (pid, parent pid, the signal the kernel sends this process at its parent's
    death) of the process that made it."""

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> torch.Tensor:
        sig = ctypes.c_int(-1)
        ctypes.CDLL(None).prctl(PR_GET_PDEATHSIG, ctypes.byref(sig), 0, 0, 0)
        return torch.tensor([os.getpid(), os.getppid(), sig.value])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")
def test_loader_processes_are_killed_with_the_process_that_started_them():
    rows = torch.cat(list(DataLoader(WhoLoads(), batch_size=1, **worker_options(2))))
    pids, parents, signals = rows.T.tolist()
    assert len(set(pids)) == 2 and os.getpid() not in pids
    assert set(parents) == {os.getpid()}
    assert set(signals) == {signal.SIGKILL}  # nothing is left behind when this process dies


def spec(root: Path) -> DataSpec:
    return DataSpec(name="image_folder", path=str(root), image_size=8, pipeline="stream",
                    workers=2, cache_dir=str(root.parent / "cache"))


def open_and_train_one_epoch(root: Path, out: mp.Queue) -> None:
    """In a daemonic process: what the stream pipeline makes of data.workers = 2 there."""
    data = open_stream(spec(root))
    source = StreamBatches(data, spec(root), 10, torch.device("cpu"), torch.arange(4), seed=0)
    n = sum(len(y) for _, y in source.epoch(torch.Generator().manual_seed(0), limit=10**9))
    out.put((usable_workers(2), n, len(data.train), list(data.notes)))


def test_a_daemonic_process_decodes_itself_and_the_notes_say_so(tmp_path):
    root = write_separable_folder(tmp_path / "img")
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    p = ctx.Process(target=open_and_train_one_epoch, args=(root, out), daemon=True)
    p.start()
    usable, seen, n_train, notes = out.get(timeout=120)
    p.join(timeout=30)
    assert p.exitcode == 0
    assert usable == 0 and seen == n_train  # every sample, decoded in the process itself
    assert [n for n in notes if "data.workers = 2 is not used here: this process is daemonic"
            in n and "non-daemonic process" in n]
    assert not open_stream(spec(root)).notes  # here (not daemonic) the workers are used
    assert usable_workers(2) == 2
