"""A local process pool: N spawned workers, each pinned to its share of the cores.

Why pin: on a 2-core machine two 1-thread processes train 1.1-2.2x faster than one 2-thread
process, while two 2-thread processes oversubscribe the cores and can collapse to 1/40.
So each worker gets ``OMP_NUM_THREADS`` (set before torch is imported in the child) and
``torch.set_num_threads`` equal to cores // workers.

Workers never open the store: they send events back over a queue and the driver writes them.
The driver hands out one task per idle worker (so each run is claimed only when it starts).
A worker that dies (killed, segfault, OOM killer) is replaced; its run is retried up to
``retries`` times, resuming from its checkpoint, and then reported failed with the cause.
Ctrl-C: workers ignore SIGINT from the terminal; the driver sends each one SIGUSR1, which
raises KeyboardInterrupt inside its trainer at the current step, so every run ends reported
as interrupted with its rows delivered. A worker whose driver disappears stops by itself within
a second, at any moment (a watcher thread polls its parent pid).

Workers are not daemonic, so a run can start its ``data.workers`` DataLoader processes (Python
forbids daemonic processes to have children). What the daemon flag gave, the driver and the
workers do themselves: ``execute`` ends every worker it started, whatever happens (so
multiprocessing's exit handler, which joins non-daemonic children, never waits on one); a
worker whose driver was killed exits by its watcher; loader processes die with their worker
(``batchlab.data.loader.die_with_parent``).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import time
from collections.abc import Callable
from typing import Any

from batchlab.children import environ, exit_with_parent, interrupt_on_usr1
from batchlab.cores import available_cores as available_cores  # re-exported for the CLI
from batchlab.cores import threads_per_worker
from batchlab.errors import ExecutorError
from batchlab.events import FAILED, Event, RunEnded
from batchlab.execute.base import RunTask, StoredSteps, TaskSource

STOP_GRACE_S = 15.0
END_GRACE_S = 5.0  # a terminated worker's time to go before it is killed


def visible_gpu(worker: int, n_gpus: int, visible: str | None = None) -> str | None:
    """The CUDA device a worker sees: one run per GPU, round robin (None: leave as is).

    ``visible`` is the driver's own CUDA_VISIBLE_DEVICES, whose ids are kept (a user who
    limited batchlab to GPUs 2,3 gets workers on 2 and 3)."""
    if n_gpus <= 1:
        return None
    ids = visible.split(",")[:n_gpus] if visible else [str(i) for i in range(n_gpus)]
    return ids[worker % len(ids)].strip()


def cuda_device_count() -> int:
    try:
        import torch  # the driver already has it; device_count() does not start CUDA

        return torch.cuda.device_count()
    except Exception:
        return 0


def _worker_main(worker: int, threads: int, tasks: mp.Queue, events: mp.Queue,
                 driver: int, inputs: Any = None) -> None:
    """Take tasks until a None arrives; send (worker, event) pairs to the driver (pid ``driver``,
    given by the driver itself: read here, a driver already dead would look like init).
    ``inputs``: the ``RunInputs`` every run uses (the Python API's objects, pickled), or None."""
    exit_with_parent(driver)  # a driver killed with -9 cannot tell its workers
    # A spawned child inherits "spawn" as its start method; its runs' loader processes take
    # this platform's default instead, as in the driver (fork on Linux: no re-import of torch
    # and the data in each loader process, which would cost seconds per loader per run).
    mp.set_start_method(None, force=True)
    interrupt_on_usr1()

    def send(event: Event) -> None:
        if os.getppid() != driver:  # the driver died (kill -9): stop, its claim will go stale
            os._exit(3)
        events.put((worker, event))

    try:
        import torch

        from batchlab.execute.datacache import DataCache
        from batchlab.execute.function import train_task

        torch.set_num_threads(threads)
        cache = DataCache()
        while (task := tasks.get()) is not None:
            if task.config.train.threads:
                torch.set_num_threads(task.config.train.threads)
            events.put((worker, task.run_id))  # "I took this task"
            train_task(task.config, send, checkpoint_path=task.checkpoint_path,
                       max_resume_step=task.max_resume_step, load_data=cache.load, prune=task.prune,
                       inputs=inputs)
            torch.set_num_threads(threads)
    except KeyboardInterrupt:
        pass
    finally:
        events.put((worker, None))  # this worker is done


class LocalPoolExecutor:
    """Run tasks on ``workers`` spawned processes (spawn: safe with torch's thread pools)."""

    def __init__(self, workers: int, threads: int | None = None, retries: int = 1,
                 inputs: Any = None) -> None:
        """``inputs``: a picklable ``RunInputs`` every run uses (the Python API's objects,
        sent to each worker once); default the configs' own builders."""
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.workers = workers
        self.inputs = inputs
        self.threads = threads or threads_per_worker(workers)
        self.retries = retries
        self.gpus = cuda_device_count()

    def _spawn(self, ctx: Any, worker: int, tasks: mp.Queue, events: mp.Queue) -> Any:
        env = {"OMP_NUM_THREADS": str(self.threads), "MKL_NUM_THREADS": str(self.threads)}
        if (gpu := visible_gpu(worker, self.gpus, os.environ.get("CUDA_VISIBLE_DEVICES"))):
            env["CUDA_VISIBLE_DEVICES"] = gpu
        # the child reads these when torch loads: they must be set before spawn
        with environ(**env):
            # not daemonic: a run may start loader processes (see the module docstring)
            p = ctx.Process(target=_worker_main,
                            args=(worker, self.threads, tasks, events, os.getpid(), self.inputs),
                            name=f"batchlab-worker-{worker}", daemon=False)
            p.start()
        return p

    def execute(self, next_task: TaskSource, on_event: Callable[[Event], None]) -> None:
        first = [t for t in (next_task() for _ in range(self.workers)) if t is not None]
        if not first:
            return
        ctx = mp.get_context("spawn")
        pool = _Pool(self, ctx, next_task, on_event)
        for task in first:
            pool.dispatch(task)
        try:
            for w in range(len(first)):  # inside the try: a failed start ends those started
                pool.start_worker(w)
            pool.drain()
        except KeyboardInterrupt:
            pool.interrupt()
            raise
        finally:
            pool.close()
        if pool.unfinished:
            codes = sorted({p.exitcode for p in pool.procs.values()}, key=str)
            raise ExecutorError(
                f"{len(pool.unfinished)} runs were not trained: the worker processes exited "
                f"early (exit codes {codes}). Finished runs are stored; run the same command "
                "again, or use --workers 1 to see the error in this process. (In a script, "
                "start the pool under `if __name__ == '__main__':`.)"
            )


class _Pool:
    """The driver side of one ``execute`` call: workers, who runs what, retries."""

    def __init__(self, owner: LocalPoolExecutor, ctx: Any, next_task: TaskSource,
                 on_event: Callable[[Event], None]) -> None:
        self.owner, self.ctx, self.next_task, self.on_event = owner, ctx, next_task, on_event
        self.tasks: mp.Queue = ctx.Queue()
        self.events: mp.Queue = ctx.Queue()
        self.procs: dict[int, Any] = {}
        self.done: set[int] = set()
        self.current: dict[int, RunTask] = {}  # worker -> task it took
        self.queued: dict[str, RunTask] = {}  # dispatched, not yet taken
        self.attempts: dict[str, int] = {}
        self.unfinished: set[str] = set()
        self.stored = StoredSteps()  # what a retried run may resume from

    def start_worker(self, w: int) -> None:
        self.procs[w] = self.owner._spawn(self.ctx, w, self.tasks, self.events)

    def dispatch(self, task: RunTask | None) -> None:
        if task is not None:
            self.queued[task.run_id] = task
            self.unfinished.add(task.run_id)
            self.attempts[task.run_id] = self.attempts.get(task.run_id, 0) + 1
        self.tasks.put(task)

    def live(self) -> list[int]:
        return [w for w in self.procs if w not in self.done]

    def drain(self, deadline: float | None = None) -> None:
        """Deliver events until every worker said it is done (or died, or the deadline)."""
        while self.live():
            if deadline is not None and time.monotonic() > deadline:
                return
            try:
                worker, event = self.events.get(timeout=0.2)
            except queue.Empty:
                self._reap(deadline is None)
                continue
            if event is None:
                self.done.add(worker)
            elif isinstance(event, str):  # the worker took a task
                self.current[worker] = self.queued.pop(event)
            else:
                if isinstance(event, RunEnded):
                    self.current.pop(worker, None)
                    self.unfinished.discard(event.run_id)
                self.on_event(event)
                self.stored.track(event)
                if isinstance(event, RunEnded) and deadline is None:
                    self.dispatch(self.next_task())  # this worker is idle now: a task or None

    def _reap(self, replace: bool) -> None:
        """Notice workers that died without saying goodbye; retry or fail their run."""
        for w in self.live():
            p = self.procs[w]
            if p.is_alive():
                continue
            self.done.add(w)
            task = self.current.pop(w, None)
            if task is None or not replace:
                continue
            if self.attempts[task.run_id] > self.owner.retries:
                self.unfinished.discard(task.run_id)
                cause = (f"worker process died (exit code {p.exitcode}) "
                         f"{self.attempts[task.run_id]} times")
                self.on_event(RunEnded(task.run_id, FAILED, 0, 0.0, {}, cause))
                task = self.next_task()
            else:
                task = self.stored.retry(task)
            if task is not None:  # a retry resumes from the run's checkpoint
                self.dispatch(task)
                self.start_worker(max(self.procs) + 1)  # keep the pool at full strength

    def interrupt(self) -> None:
        for w in self.live():
            if self.procs[w].is_alive():
                os.kill(self.procs[w].pid, signal.SIGUSR1)
        self.drain(deadline=time.monotonic() + STOP_GRACE_S)

    def close(self) -> None:
        """End every worker. Those that said goodbye are exiting (ending their loader processes
        on the way): they get END_GRACE_S to finish. Any still running then (after an error,
        or past the interrupt's grace) is terminated, then killed if it lingers; all are
        joined. Nothing is left for multiprocessing's exit handler to wait on, and a second
        Ctrl-C in here still kills."""
        try:
            _join([p for w, p in self.procs.items() if w in self.done], END_GRACE_S)
            for p in self.procs.values():
                if p.is_alive():
                    p.terminate()
            _join(list(self.procs.values()), END_GRACE_S)
        finally:
            for p in self.procs.values():
                if p.is_alive():
                    p.kill()
                    p.join()


def _join(procs: list[Any], grace: float) -> None:
    """Join ``procs``, waiting ``grace`` seconds for all of them together."""
    deadline = time.monotonic() + grace
    for p in procs:
        p.join(timeout=max(0.0, deadline - time.monotonic()))
