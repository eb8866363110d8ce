"""What every ``torch.utils.data.DataLoader`` batchlab builds shares: errors, seeding, options.

A DataError raised in a loader process reaches the caller re-wrapped by torch ("Caught
DataError in DataLoader worker process 0. Original Traceback ..."), which would lose the
one-paragraph message the memory path gives for the same bad file. So samples catch it
(``guarded``), hand it over as a ``Failed`` value, ``collate`` lets it through (merging the
bad files of one batch into one error), and ``unwrap`` raises the very same DataError in the
training process (after every batch, naming every bad file, when asked to).

Loader processes die with the process that started them (``die_with_parent``): a run worker
of a local pool killed mid-epoch (kill -9, the OOM killer, or by its own driver-death watch)
must not leave its loader processes behind.
"""

from __future__ import annotations

import ctypes
import functools
import multiprocessing
import os
import random
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch
from torch.utils.data import default_collate

from batchlab.data.fileio import UnreadableFiles
from batchlab.errors import DataError

T = TypeVar("T")


@dataclass(frozen=True)
class Failed:
    """A sample (or a batch) that could not be produced: the DataError that says why."""

    error: DataError


def guarded(make: Callable[[], T]) -> T | Failed:
    """``make()``, or a Failed carrying its DataError."""
    try:
        return make()
    except DataError as err:
        return Failed(err)


def _merged(failures: list[Failed]) -> Failed:
    """One Failed naming every unreadable file of ``failures`` (another error: the first)."""
    errors = [f.error for f in failures]
    if len(errors) > 1 and all(isinstance(e, UnreadableFiles) for e in errors):
        return Failed(UnreadableFiles.merge(errors))  # type: ignore[arg-type]
    return failures[0]


def collate(samples: list[Any]) -> Any:
    """``default_collate``, except that Failed samples make the whole batch one Failed that
    names every bad file of the batch."""
    failed = [s for s in samples if isinstance(s, Failed)]
    return _merged(failed) if failed else default_collate(samples)


def unwrap(batches: Iterable[T | Failed], *, every: bool = False) -> Iterator[T]:
    """The batches, raising the original DataError where one Failed. ``every``: read every
    batch first (skipping failed ones) and raise once at the end, naming every unreadable
    file: for passes that read all the data anyway (a decoded cache's build)."""
    failures: list[Failed] = []
    for batch in batches:
        if not isinstance(batch, Failed):
            yield batch
        elif every:
            failures.append(batch)
        else:
            raise batch.error
    if failures:
        raise _merged(failures).error


def seed_worker(worker_id: int) -> None:
    """Seed numpy's and Python's RNGs in a loader process from torch's per-worker seed (which
    the loader derives from its seeded generator), so nothing in a worker is unseeded.
    batchlab's own augmentation does not rely on this: each sample carries its own seed."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent: int) -> None:
    """Ask the kernel to SIGKILL this process when ``parent`` (the pid that started it) exits,
    however it exits; exit now if it is already gone. Linux only (elsewhere a no-op: torch's
    own watchdog still stops an orphaned loader process once it is idle).

    Why not rely on torch's watchdog alone: it polls only between samples, and an orphan whose
    result queue's pipe is full can block at exit, flushing into a pipe nobody reads. The
    signal follows the *thread* that started the process; batchlab's loaders live inside one
    call (a run, the statistics, the cache build) in the thread that iterates them, so that
    thread outlives them.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return  # no prctl in this libc: keep torch's watchdog
    if os.getppid() != parent:  # it died before the request took effect
        os._exit(0)


def init_worker(worker_id: int, parent: int) -> None:
    """Every batchlab loader process's ``worker_init_fn``: die with ``parent``, then seed."""
    die_with_parent(parent)
    seed_worker(worker_id)


def usable_workers(workers: int) -> int:
    """``workers``, or 0 inside a daemonic process (say, a ``multiprocessing.Pool`` worker
    that calls batchlab), which Python forbids to start processes of its own; ``open_stream``
    says so in the data's notes. A local pool's run workers are not daemonic, so their runs
    get their loader processes."""
    return 0 if multiprocessing.current_process().daemon else workers


def worker_options(workers: int) -> dict[str, Any]:
    """The DataLoader arguments for ``workers`` loader processes (as many as this process may
    start), each dying with this process and seeded (``init_worker``)."""
    workers = usable_workers(workers)
    if not workers:
        return {"num_workers": 0}
    return {"num_workers": workers,
            "worker_init_fn": functools.partial(init_worker, parent=os.getpid())}


def loader_options(workers: int, device: torch.device, seed: int) -> dict[str, Any]:
    """DataLoader keyword arguments: ``worker_options(workers)``, the processes kept alive
    across epochs (starting them costs more than a small epoch), pinned memory on CUDA
    (asynchronous copies), a seeded generator, and the Failed-aware collate."""
    options: dict[str, Any] = {
        **worker_options(workers), "collate_fn": collate, "pin_memory": device.type == "cuda",
        "generator": torch.Generator().manual_seed(seed),
    }
    if options["num_workers"]:
        options.update(persistent_workers=True, prefetch_factor=4)
    return options
