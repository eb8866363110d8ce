"""What a child process of batchlab (a pool worker, a rank of a DDP run) does about its parent.

A parent killed with -9 cannot tell its children, which would otherwise live on as orphans
(and keep training, or wait forever in a collective); and a child stopped by its parent gets
SIGUSR1 rather than the terminal's Ctrl-C, so that it ends its run reported as interrupted.
Imports nothing heavy.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def exit_with_parent(parent: int, every: float = 0.5) -> None:
    """Exit this process within ``every`` seconds of the death of ``parent`` (its pid, read by
    the parent itself: read here, a parent already dead would look like init), whatever the
    process is doing (importing torch, training, blocked on a queue or a collective)."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os._exit(3)  # its claims go stale; the next sweep resumes the runs from checkpoints

    threading.Thread(target=watch, name="batchlab-parent-watch", daemon=True).start()


def exit_with_starter() -> None:
    """Exit this process as soon as the process that started it through multiprocessing dies,
    even when a fork server forked it (its parent then is the server, which lives on while
    it has children): multiprocessing hands every child a sentinel of the process that asked
    for it, which becomes ready when that process exits."""
    import multiprocessing
    from multiprocessing.connection import wait

    starter = multiprocessing.parent_process()
    if starter is None or starter.sentinel is None:
        return

    def watch() -> None:
        wait([starter.sentinel])
        os._exit(3)

    threading.Thread(target=watch, name="batchlab-starter-watch", daemon=True).start()


def _interrupt(signum: int, frame: Any) -> None:
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)  # one interrupt is enough
    raise KeyboardInterrupt


def interrupt_on_usr1() -> None:
    """Ignore the terminal's Ctrl-C (the parent decides) and turn SIGUSR1 into a
    KeyboardInterrupt at the current line of the main thread."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGUSR1, _interrupt)


@contextmanager
def environ(**values: str) -> Iterator[None]:
    """Environment variables set for the duration (for children started inside: torch reads
    OMP_NUM_THREADS and CUDA_VISIBLE_DEVICES when it loads), then restored."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
