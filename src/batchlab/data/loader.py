"""What every ``torch.utils.data.DataLoader`` batchlab builds shares: errors, seeding, options.

A DataError raised in a loader process reaches the caller re-wrapped by torch ("Caught
DataError in DataLoader worker process 0. Original Traceback ..."), which would lose the
one-paragraph message the memory path gives for the same bad file. So samples catch it
(``guarded``), hand it over as a ``Failed`` value, ``collate`` lets it through, and
``unwrap`` raises the very same DataError in the training process.
"""

from __future__ import annotations

import multiprocessing
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch
from torch.utils.data import default_collate

from batchlab.errors import DataError

T = TypeVar("T")


@dataclass(frozen=True)
class Failed:
    """A sample that could not be produced: the DataError's message."""

    message: str


def guarded(make: Callable[[], T]) -> T | Failed:
    """``make()``, or a Failed carrying its DataError's message."""
    try:
        return make()
    except DataError as err:
        return Failed(str(err))


def collate(samples: list[Any]) -> Any:
    """``default_collate``, except that a Failed sample makes the whole batch that Failed."""
    for sample in samples:
        if isinstance(sample, Failed):
            return sample
    return default_collate(samples)


def unwrap(batches: Iterable[T | Failed]) -> Iterator[T]:
    """The batches, raising the original DataError where one Failed."""
    for batch in batches:
        if isinstance(batch, Failed):
            raise DataError(batch.message)
        yield batch


def seed_worker(worker_id: int) -> None:
    """Seed numpy's and Python's RNGs in a loader process from torch's per-worker seed (which
    the loader derives from its seeded generator), so nothing in a worker is unseeded.
    batchlab's own augmentation does not rely on this: each sample carries its own seed."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def usable_workers(workers: int) -> int:
    """``workers``, or 0 inside a daemonic process (a local-pool run worker), which Python
    forbids to start processes of its own; there the pool's processes already use the cores."""
    return 0 if multiprocessing.current_process().daemon else workers


def loader_options(workers: int, device: torch.device, seed: int) -> dict[str, Any]:
    """DataLoader keyword arguments: ``workers`` processes (kept alive across epochs: starting
    them costs more than a small epoch), pinned memory on CUDA (asynchronous copies), a seeded
    generator and worker seeding, and the Failed-aware collate."""
    workers = usable_workers(workers)
    options: dict[str, Any] = {
        "num_workers": workers, "collate_fn": collate, "pin_memory": device.type == "cuda",
        "generator": torch.Generator().manual_seed(seed),
    }
    if workers:
        options.update(persistent_workers=True, worker_init_fn=seed_worker, prefetch_factor=4)
    return options
