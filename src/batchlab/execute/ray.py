"""Run a sweep on a Ray cluster (``pip install "batchlab[ray]"``; Ray is imported lazily).

Each run is one Ray task with ``cpus_per_run`` CPUs and ``gpus_per_run`` GPUs; a run over
several processes (DDP) is a task that starts them as Ray Train workers sharing those
resources, on any nodes (``batchlab.execute.raytrain``). Its events
stream back to the driver through a Ray queue actor, and the driver alone writes the store,
so workers need no access to the store's file. A task whose worker process dies is retried
by Ray up to ``retries`` times and then reported failed with Ray's description of the cause.
Ray retries the original task, so the task asks at its start how far the store has got
(``StoredSteps``, kept by the driver from the events it writes and shared through a small
actor): a retry, on any node, resumes from the checkpoint its first attempt wrote. Checkpoints
travel (``batchlab.execute.checkpoints``): through Ray to the driver's folder beside the store
by default, or to ``checkpoint_storage``, a URL every node reaches; no shared filesystem is
needed. The driver's actors (the event queue, the store's progress, the checkpoint files) are
pinned to the driver's node, so they die with no other node.

A task runs in the main thread of a Ray worker process, which is no daemonic multiprocessing
child, so a streamed run starts its ``data.workers`` loader processes there as in the driver
(forked on Linux, and dying with the Ray worker: ``batchlab.data.loader.die_with_parent``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from batchlab.errors import ExecutorError
from batchlab.events import FAILED, INTERRUPTED, Event, RunEnded
from batchlab.execute.base import RunTask, StoredSteps, TaskSource, allow_resume
from batchlab.execute.checkpoints import DriverFiles, check_storage, travelling
from batchlab.execute.raytrain import over_workers, resources_error, train_over_workers

STOP_GRACE_S = 15.0


def import_ray() -> Any:
    try:
        import ray
        import ray.util.queue  # noqa: F401
    except ImportError:
        raise ExecutorError(
            "the Ray executor needs Ray: pip install \"batchlab[ray]\" (or pip install ray), "
            "or use --executor local."
        ) from None
    return ray


def _ray_train(task: RunTask, events: Any, threads: int,
               stored_step: Callable[[str], int | None]) -> str:
    """The body of one Ray task: train and stream every event to the driver's queue.
    ``stored_step(run_id)``: how far the store has got now (a retry may resume up to there)."""
    import torch

    from batchlab.execute.function import train_task

    task = allow_resume(task, stored_step(task.run_id))
    torch.set_num_threads(task.config.train.threads or threads)
    end = train_task(task.config, events.put, checkpoint_path=task.checkpoint_path,
                     max_resume_step=task.max_resume_step, prune=task.prune)
    return end.status


class _Coverage:
    """A Ray actor holding the driver's ``StoredSteps``, for the tasks to read."""

    def __init__(self) -> None:
        self.steps: dict[str, int] = {}

    def set(self, run_id: str, step: int) -> None:
        self.steps[run_id] = step

    def get(self, run_id: str) -> int | None:
        return self.steps.get(run_id)


def _asker(coverage: Any) -> Callable[[str], int | None]:
    """``stored_step`` for a task: one call to the coverage actor."""
    def stored_step(run_id: str) -> int | None:
        import ray

        return ray.get(coverage.get.remote(run_id))
    return stored_step


def _on_driver_node(ray: Any) -> dict[str, Any]:
    """Actor options that place an actor on this (the driver's) node: an actor Ray put on a
    worker node would die with that node, and the sweep with it. Through Ray Client
    (``ray://``) the driver is outside the cluster: Ray places them."""
    from ray.util.client import ray as client
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    if client.is_connected():
        return {"num_cpus": 0}
    node = ray.get_runtime_context().get_node_id()
    return {"num_cpus": 0, "scheduling_strategy": NodeAffinitySchedulingStrategy(node, soft=False)}


class RayExecutor:
    """Connect to (or start) a Ray cluster and run each task there with fixed resources."""

    def __init__(self, address: str | None = None, cpus_per_run: float = 1,
                 gpus_per_run: float = 0, retries: int = 2,
                 init_kwargs: dict[str, Any] | None = None,
                 checkpoint_storage: str | None = None) -> None:
        """``checkpoint_storage``: a folder URL every node reaches (a path, ``s3://...``; see
        ``batchlab.execute.checkpoints``) for the runs' checkpoints; None: the driver's folder
        beside the store, reached through Ray. A bad one raises BatchlabError here."""
        if cpus_per_run <= 0 or gpus_per_run < 0:
            raise ExecutorError("--cpus-per-run must be > 0 and --gpus-per-run >= 0.")
        self.checkpoint_storage = (None if checkpoint_storage is None
                                   else check_storage(checkpoint_storage))
        self.address = address
        self.cpus_per_run = cpus_per_run
        self.gpus_per_run = gpus_per_run
        self.retries = retries
        self.init_kwargs = init_kwargs or {}

    def _connect(self, ray: Any) -> None:
        if ray.is_initialized():
            return
        try:
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False,
                     **self.init_kwargs)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise ExecutorError(
                f"could not connect to Ray at {self.address or 'a new local cluster'}: {err}. "
                "Start one with `ray start --head` and pass --address auto (or ray://host:port)."
            ) from None

    def _capacity(self, ray: Any) -> int:
        """How many runs fit the cluster at once; more would only queue inside Ray."""
        res = ray.cluster_resources()
        slots = res.get("CPU", 1) / self.cpus_per_run
        if self.gpus_per_run:
            slots = min(slots, res.get("GPU", 0) / self.gpus_per_run)
        if slots < 1:
            raise ExecutorError(
                f"the Ray cluster has {res.get('CPU', 0)} CPUs and {res.get('GPU', 0)} GPUs: "
                f"not enough for one run with --cpus-per-run {self.cpus_per_run} and "
                f"--gpus-per-run {self.gpus_per_run}."
            )
        return int(slots)

    def execute(self, next_task: TaskSource, on_event: Callable[[Event], None]) -> None:
        ray = import_ray()
        self._connect(ray)
        from ray.util.queue import Queue

        here = _on_driver_node(ray)
        events = Queue(actor_options=here)
        stored = StoredSteps()
        coverage = ray.remote(**here)(_Coverage).remote()
        files = ray.remote(**here)(DriverFiles).remote()
        ask = _asker(coverage)
        remote = ray.remote(num_cpus=self.cpus_per_run, num_gpus=self.gpus_per_run,
                            max_retries=self.retries)(_ray_train)
        # a DDP run's task only waits for its Ray Train workers, which hold its resources
        over = ray.remote(num_cpus=0, max_retries=self.retries)(train_over_workers)
        threads = max(1, int(self.cpus_per_run))
        capacity = self._capacity(ray)
        in_flight: dict[Any, RunTask] = {}
        ended: set[str] = set()

        def deliver_queued() -> None:
            for event in events.get_nowait_batch(events.qsize()) if events.qsize() else []:
                if isinstance(event, RunEnded):
                    ended.add(event.run_id)
                on_event(event)  # the store holds it now: a retry may resume up to here
                before = stored.steps.get(event.run_id)
                stored.track(event)
                if stored.steps.get(event.run_id) != before:
                    coverage.set.remote(event.run_id, stored.steps[event.run_id])

        def settle(ref: Any) -> None:
            """A task returned or failed for good: make sure its run has a final event."""
            task = in_flight.pop(ref)
            deliver_queued()  # its events were queued before it returned
            try:
                ray.get(ref)
            except Exception as err:  # the worker died more than `retries` times, or cancelled
                if task.run_id not in ended:
                    status = INTERRUPTED if "cancel" in type(err).__name__.lower() else FAILED
                    on_event(RunEnded(task.run_id, status, 0, 0.0, {},
                                      f"Ray task failed: {type(err).__name__}: {err}"[:2000]))
            ended.add(task.run_id)

        try:
            while True:
                while len(in_flight) < capacity and (task := next_task()) is not None:
                    sent = travelling(task, self.checkpoint_storage, files)
                    # named by its run: Ray's dashboard and the worker's process title
                    # ("ray::batchlab run <id>") say which run a task trains
                    name = f"batchlab run {task.run_id}"
                    if not over_workers(task.config):
                        in_flight[remote.options(name=name).remote(sent, events, threads, ask)] = task
                    elif (why := resources_error(task.config, self.gpus_per_run)) is not None:
                        on_event(RunEnded(task.run_id, FAILED, 0, 0.0, {}, why))
                    else:
                        in_flight[over.options(name=name).remote(
                            sent, events, ask, self.cpus_per_run, self.gpus_per_run,
                            self.retries)] = task
                if not in_flight:
                    break
                done, _ = ray.wait(list(in_flight), num_returns=1, timeout=0.2)
                deliver_queued()
                for ref in done:
                    settle(ref)
        except KeyboardInterrupt:
            for ref in in_flight:
                ray.cancel(ref)  # raises KeyboardInterrupt inside the trainer: reported interrupted
            deadline = time.monotonic() + STOP_GRACE_S
            while in_flight and time.monotonic() < deadline:
                done, _ = ray.wait(list(in_flight), num_returns=len(in_flight), timeout=0.5)
                for ref in done:
                    settle(ref)
            deliver_queued()
            raise
        finally:
            ray.kill(events.actor)
            ray.kill(coverage)
            ray.kill(files)
