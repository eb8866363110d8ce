"""How many torch threads a run gets: the cores this process may use, shared among workers.

One rule for the executors (a sweep's runs) and the throughput probe, so that the probe
measures at the thread count the runs it advises on will train with. Imports nothing heavy.
"""

from __future__ import annotations

import os


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def threads_per_worker(workers: int) -> int:
    """Torch threads per worker process of a ``workers``-process pool: its share of the cores."""
    return max(1, available_cores() // workers)


def sweep_threads(train_threads: int | None, workers: int, process_default: int,
                  cores: int) -> tuple[int, str]:
    """The torch threads a run of ``batchlab sweep --workers N`` trains with, and why.

    ``train.threads`` when the spec sets it; with one worker the run trains in the driver
    process with its default threads (``process_default``); with N workers each worker
    process gets ``cores // N`` (at least 1). Pure: the caller supplies the machine's numbers.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if train_threads:
        return train_threads, "train.threads"
    if workers == 1:
        return process_default, "the process default, as a run of `sweep --workers 1`"
    share = max(1, cores // workers)
    return share, f"{cores} cores // {workers} workers, as a run of `sweep --workers {workers}`"
