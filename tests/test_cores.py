"""The thread count of a sweep's run, as a pure rule (the executors and the throughput probe)."""

import pytest

from batchlab.cores import sweep_threads


def test_train_threads_win():
    assert sweep_threads(3, 2, 8, 16) == (3, "train.threads")


def test_one_worker_keeps_the_process_default():
    threads, why = sweep_threads(None, 1, 6, 16)
    assert threads == 6 and "sweep --workers 1" in why


@pytest.mark.parametrize(("workers", "cores", "want"), [(2, 2, 1), (2, 16, 8), (3, 8, 2), (4, 2, 1)])
def test_workers_share_the_cores(workers, cores, want):
    threads, why = sweep_threads(None, workers, 99, cores)
    assert threads == want and f"{cores} cores // {workers} workers" in why


def test_workers_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        sweep_threads(None, 0, 2, 2)
