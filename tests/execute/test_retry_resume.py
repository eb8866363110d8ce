"""A worker killed mid-run: its retry resumes from the checkpoint on disk, not from step 0."""

import os
import signal
import threading
import time

import torch
from test_faults import _cmdline, children

from batchlab.events import RunStarted
from batchlab.execute.local import LocalPoolExecutor
from batchlab.execute.sweep import checkpoint_dir, run_sweep
from batchlab.spec import spec_from_dict
from batchlab.store import Store


def covered_checkpoint(db, ckpt_dir) -> bool:
    """Whether a checkpoint exists whose step the store holds every row for: only such a one
    is resumed from (``checkpoint.resumable``). Under load the rows of its epoch can reach the
    store after the checkpoint is written; a kill in between rightly starts from scratch."""
    ckpts = [p for p in ckpt_dir.iterdir() if p.suffix == ".pt"] if ckpt_dir.is_dir() else []
    if not ckpts:
        return False
    try:
        step = torch.load(ckpts[0], weights_only=False)["step"]
        with Store(db, create=False, read_only=True) as st:
            (run,) = st.runs("retry")
    except Exception:  # replaced or not yet stored while read: look again
        return False
    return run.progress_step is not None and run.progress_step >= step


def kill_worker_after_first_checkpoint(db, ckpt_dir, killed):
    """From a thread: once a checkpoint the store covers exists, SIGKILL this process's pool
    worker."""
    end = time.monotonic() + 120
    while time.monotonic() < end and not killed:
        if covered_checkpoint(db, ckpt_dir):
            for pid in children(os.getpid()):
                if "spawn_main" in _cmdline(pid) and "resource_tracker" not in _cmdline(pid):
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
        time.sleep(0.01)


def test_retried_run_resumes_from_its_checkpoint(tmp_path):
    spec = spec_from_dict({
        "name": "retry", "data": {"name": "synthetic", "shape": [32], "classes": 4, "size": 2000},
        "model": {"name": "mlp", "hidden": [64]},
        "train": {"epochs": 60, "batch_size": 32, "threads": 1}})
    started = []
    killed = []
    with Store(tmp_path / "s.db") as store:
        watcher = threading.Thread(target=kill_worker_after_first_checkpoint,
                                   args=(tmp_path / "s.db", checkpoint_dir(store), killed), daemon=True)
        watcher.start()
        run_sweep(spec, store, LocalPoolExecutor(1, threads=1),
                  on_event=lambda e: started.append(e) if isinstance(e, RunStarted) else None)
        watcher.join(timeout=5)
        (run,) = store.runs("retry")
    assert killed, "the worker was never killed"
    assert run.status == "completed" and run.attempts == 2
    first, retry = started
    assert first.resumed_from == 0
    spe = run.summary["steps_per_epoch"]
    assert retry.resumed_from >= spe and retry.resumed_from % spe == 0  # from a checkpoint
