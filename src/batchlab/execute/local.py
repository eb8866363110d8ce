"""A local process pool: N spawned workers, each pinned to its share of the cores.

Why pin: on a 2-core machine two 1-thread processes train 1.1-2.2x faster than one 2-thread
process, while two 2-thread processes oversubscribe the cores and can collapse to 1/40.
So each worker gets ``OMP_NUM_THREADS`` (set before torch is imported in the child) and
``torch.set_num_threads`` equal to cores // workers.

Workers never open the store: they send events back over a queue and the driver writes them.
Ctrl-C: workers ignore SIGINT from the terminal; the driver sends each one SIGUSR1, which
raises KeyboardInterrupt inside its trainer at the current step, so every run ends reported
as interrupted with its rows delivered.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import time
from collections.abc import Callable
from typing import Any

from batchlab.errors import ExecutorError
from batchlab.events import FAILED, Event, RunEnded, RunStarted
from batchlab.execute.base import RunTask

STOP_GRACE_S = 15.0


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def threads_per_worker(workers: int) -> int:
    return max(1, available_cores() // workers)


def _interrupt(signum: int, frame: Any) -> None:
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)  # one interrupt is enough
    raise KeyboardInterrupt


def _worker_main(worker: int, threads: int, tasks: mp.Queue, events: mp.Queue) -> None:
    """Take tasks until a None arrives; send (worker, event) pairs to the driver."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGUSR1, _interrupt)
    try:
        import torch

        from batchlab.execute.datacache import DataCache
        from batchlab.train.loop import train_run

        torch.set_num_threads(threads)
        cache = DataCache()
        while (task := tasks.get()) is not None:
            if task.config.train.threads:
                torch.set_num_threads(task.config.train.threads)
            train_run(task.config, lambda e: events.put((worker, e)),
                      checkpoint_path=task.checkpoint_path,
                      max_resume_step=task.max_resume_step, load_data=cache.load)
            torch.set_num_threads(threads)
    except KeyboardInterrupt:
        pass
    finally:
        events.put((worker, None))  # this worker is done


class LocalPoolExecutor:
    """Run tasks on ``workers`` spawned processes (spawn: safe with torch's thread pools)."""

    def __init__(self, workers: int, threads: int | None = None) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.workers = workers
        self.threads = threads or threads_per_worker(workers)

    def _start(self, ctx: Any, count: int, tasks: mp.Queue, events: mp.Queue) -> list[Any]:
        procs = []
        saved = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
        try:
            # the child reads these when torch loads: they must be set before spawn
            for k in saved:
                os.environ[k] = str(self.threads)
            for w in range(count):
                p = ctx.Process(target=_worker_main, args=(w, self.threads, tasks, events),
                                name=f"batchlab-worker-{w}", daemon=True)
                p.start()
                procs.append(p)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        return procs

    def execute(self, tasks: list[RunTask], on_event: Callable[[Event], None]) -> None:
        if not tasks:
            return
        ctx = mp.get_context("spawn")
        task_q: mp.Queue = ctx.Queue()
        event_q: mp.Queue = ctx.Queue()
        for task in tasks:
            task_q.put(task)
        count = min(self.workers, len(tasks))  # never start idle workers
        for _ in range(count):
            task_q.put(None)
        procs = self._start(ctx, count, task_q, event_q)
        current: dict[int, str] = {}  # worker -> run it is training
        done: set[int] = set()
        ended: set[str] = set()

        def deliver(event: Event) -> None:
            if isinstance(event, RunEnded):
                ended.add(event.run_id)
            on_event(event)

        try:
            self._drain(procs, event_q, deliver, current, done)
            missing = [t.run_id for t in tasks if t.run_id not in ended]
            if missing:
                codes = sorted({p.exitcode for p in procs})
                raise ExecutorError(
                    f"{len(missing)} of {len(tasks)} runs were not trained: the worker processes "
                    f"exited early (exit codes {codes}). Finished runs are stored; run the same "
                    "command again, or use --workers 1 to see the error in this process. (In a "
                    "script, start the pool under `if __name__ == '__main__':`.)"
                )
        except KeyboardInterrupt:
            for p in procs:
                if p.is_alive():
                    os.kill(p.pid, signal.SIGUSR1)
            try:
                self._drain(procs, event_q, deliver, current, done,
                            deadline=time.monotonic() + STOP_GRACE_S)
            finally:
                for p in procs:
                    if p.is_alive():
                        p.terminate()
            raise
        finally:
            for p in procs:
                p.join(timeout=5)

    @staticmethod
    def _drain(procs: list[Any], event_q: mp.Queue, on_event: Callable[[Event], None],
               current: dict[int, str], done: set[int], deadline: float | None = None) -> None:
        """Deliver events until every worker said it is done (or died, or the deadline passed)."""
        while len(done) < len(procs):
            if deadline is not None and time.monotonic() > deadline:
                return
            try:
                worker, event = event_q.get(timeout=0.2)
            except queue.Empty:
                for w, p in enumerate(procs):
                    if w not in done and not p.is_alive():
                        # died without saying goodbye (killed, segfault, OOM killer)
                        done.add(w)
                        if w in current:
                            on_event(RunEnded(current.pop(w), FAILED, 0, 0.0, {},
                                              f"worker process died (exit code {p.exitcode})"))
                continue
            if event is None:
                done.add(worker)
                continue
            if isinstance(event, RunStarted):
                current[worker] = event.run_id
            elif isinstance(event, RunEnded):
                current.pop(worker, None)
            on_event(event)
