"""One DDP run whose processes Ray Train places, on one node or several (the Ray executor).

With ``--executor ray`` a run with ``train.devices = N`` (``train.strategy = "ddp"``) is not
one Ray task that starts N processes on its node (``batchlab.train.launch``): its Ray task
(0 CPUs: it only waits) starts a Ray Train ``TorchTrainer`` with N workers, each with
``cpus_per_run / N`` CPUs and ``gpus_per_run / N`` GPUs, which Ray places where they fit: on
one node when it has room (Ray Train packs them), else across nodes. Ray Train joins them in a
process group (gloo on CPU, NCCL with GPUs; addresses of the nodes, not loopback), and every
worker trains its rank with the per-rank loop a local DDP run uses
(``batchlab.train.launch.train_rank``). Rank 0 sends the run's events to the driver's queue
(its summary also says on how many ``nodes`` the ranks trained), and the driver alone writes
the store; checkpoints travel as every Ray run's do
(``batchlab.execute.checkpoints``): rank 0 writes them, every rank reads one back to resume.

How a run ends:

- The run ends when rank 0's run ends. Each rank then leaves the process group, so a rank
  still waiting in a collective (the followers after an early end: pruned, diverged,
  interrupted) gets an error there at once and ends too; followers report nothing.
- A run that fails (a worker or its node died, a collective broke, an exception) is not
  reported failed by rank 0: its worker raises, and Ray Train starts the whole group again, up
  to ``retries`` times. Every attempt resumes from the last checkpoint the store covers (rank
  0 asks the driver once and tells the others, so all ranks start from the same step). After
  the last attempt the task reports the run failed with rank 0's error. An error of the run's
  own code is retried too: Ray Train cannot tell it from a lost peer.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable
from typing import Any

from batchlab.events import FAILED, Event, RunEnded
from batchlab.execute.base import RunTask, allow_resume
from batchlab.spec import RunConfig

#: Ray Train's own storage (a marker file per run and node; batchlab's checkpoints travel apart)
RAY_TRAIN_STORAGE = f"{tempfile.gettempdir()}/batchlab-ray-train"


def over_workers(config: RunConfig) -> bool:
    """Whether the Ray executor trains this run over Ray Train workers: the built-in loop over
    several processes (a ``train.function`` run trains in one process)."""
    t = config.train
    return t.devices > 1 and t.strategy == "ddp" and t.function is None


def resources_error(config: RunConfig, gpus_per_run: float) -> str | None:
    """Why ``gpus_per_run`` cannot train ``config`` over its workers, or None: with GPUs each
    process needs one of its own (NCCL refuses two ranks on one GPU)."""
    world = config.train.devices
    if 0 < gpus_per_run < world:
        return (f"train.devices = {world} with --gpus-per-run {gpus_per_run:g}: a run over "
                f"several processes on Ray trains one process per GPU, so it needs "
                f"--gpus-per-run {world} (or more), or --gpus-per-run 0 to train on CPUs")
    return None


def backend(config: RunConfig, gpus_per_run: float) -> str:
    """The process group's backend: NCCL when the workers get GPUs and the run may use them
    (``train.device`` is not "cpu"), else gloo."""
    return "nccl" if gpus_per_run > 0 and config.train.device != "cpu" else "gloo"


class RankFailed(RuntimeError):
    """Rank 0's run failed: raised in its worker so Ray Train starts the group again."""


def _rank_loop(cfg: dict[str, Any]) -> None:
    """One Ray Train worker: agree on where to resume, train this rank, leave the group."""
    import ray
    import ray.train
    import torch
    import torch.distributed as dist

    from batchlab.train.distributed import leave
    from batchlab.train.launch import train_rank

    task: RunTask = cfg["task"]
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    torch.set_num_threads(cfg["threads"])
    backend = dist.get_backend()
    if backend == "nccl":
        import ray.train.torch

        torch.cuda.set_device(ray.train.torch.get_device())  # "cuda" here is this rank's GPU
    # rank 0 asks once: ranks resuming from different steps would train different runs
    box = [cfg["stored_step"](task.run_id) if rank == 0 else None]
    dist.broadcast_object_list(box, src=0)
    task = allow_resume(task, box[0])
    nodes: list[Any] = [None] * world
    dist.all_gather_object(nodes, ray.get_runtime_context().get_node_id())
    failure: list[RunEnded] = []

    def send(event: Event) -> None:
        if isinstance(event, RunEnded) and event.status == FAILED:
            failure.append(event)  # not the end yet: Ray Train may try again
            return
        if isinstance(event, RunEnded):  # the summary says where the ranks trained
            event = dataclasses.replace(event, summary={**event.summary, "nodes": len(set(nodes))})
        cfg["events"].put(event)

    try:
        train_rank(task.config, send, rank, world, backend, checkpoint_path=task.checkpoint_path,
                   max_resume_step=task.max_resume_step, prune=task.prune)
    finally:
        leave()  # a rank waiting in a collective for this one gets an error there, and ends
    if failure:
        raise RankFailed(failure[0].error or "failed")


def _first_error(err: Exception) -> str:
    """Rank 0's error text from Ray Train's failure (else the failure's own text)."""
    failures = getattr(err, "worker_failures", None) or {}
    cause = failures.get(0) or next(iter(failures.values()), None) or err
    while cause.__cause__ is not None and not isinstance(cause, RankFailed):
        cause = cause.__cause__
    return str(cause) if isinstance(cause, RankFailed) else f"{type(cause).__name__}: {cause}"


def train_over_workers(task: RunTask, events: Any, stored_step: Callable[[str], int | None],
                       cpus_per_run: float, gpus_per_run: float, retries: int) -> str:
    """The body of a DDP run's Ray task: train ``task`` over ``train.devices`` Ray Train workers
    that share ``cpus_per_run`` CPUs and ``gpus_per_run`` GPUs, and return how the run ended
    (rank 0 sends its events to ``events``; a failure after ``retries`` restarts is sent here).
    ``stored_step(run_id)``: how far the store has got (each attempt may resume up to there).
    Returns "ended" when rank 0 reported the end, else "failed"."""
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    from batchlab.train.distributed import COLLECTIVE_TIMEOUT

    world = task.config.train.devices
    share = {"CPU": cpus_per_run / world, **({"GPU": gpus_per_run / world} if gpus_per_run else {})}
    threads = task.config.train.threads or max(1, int(cpus_per_run / world))
    trainer = TorchTrainer(
        _rank_loop,
        train_loop_config={"task": task, "events": events, "stored_step": stored_step,
                           "threads": threads},
        scaling_config=ScalingConfig(num_workers=world, use_gpu=gpus_per_run > 0,
                                     resources_per_worker=share),
        torch_config=TorchConfig(backend=backend(task.config, gpus_per_run),
                                 timeout_s=int(COLLECTIVE_TIMEOUT.total_seconds())),
        run_config=RunConfig(name=f"batchlab-{task.run_id}", storage_path=RAY_TRAIN_STORAGE,
                             failure_config=FailureConfig(max_failures=retries)),
    )
    try:
        trainer.fit()
    except Exception as err:  # Ray Train's TrainingFailedError: the last attempt failed too
        events.put(RunEnded(task.run_id, FAILED, 0, 0.0, {},
                            f"Ray Train, attempt {retries + 1} of {retries + 1}: "
                            f"{_first_error(err)}"[:2000]))
        return FAILED
    return "ended"

