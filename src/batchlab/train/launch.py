"""Launch one run over ``train.devices`` processes on this machine (DDP) and relay its events.

``train_ddp`` starts N ranks (``torch.multiprocessing``, from a fork server: see ``_context``),
which meet in a process group on a free loopback port: gloo on CPU, NCCL on CUDA (rank r on
GPU r). Every rank runs ``train_run`` with its ``Replica`` (``batchlab.train.distributed``).
Rank 0 leads: its events come back over a queue and go to ``sink`` here, so the executor sees
one run exactly as from ``train_run``; the other ranks send nothing but their own failure.

The run ends when the leader's ends. Followers that completed exit by themselves; after an
earlier end (pruned, diverged, interrupted) they wait in a collective the leader will never
join, so they are terminated. A rank that fails or dies ends the run failed, naming the rank.
Ctrl-C (or the pool's SIGUSR1): every rank gets SIGUSR1, the leader reports the run
interrupted, and KeyboardInterrupt propagates. Each rank exits by itself when this process
dies (``batchlab.children``).

CPU threads: this process's torch threads (the executor's share for the run) are divided
among the ranks, at least one each: on 2 cores, 2 ranks x 1 thread.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import queue
import signal
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.multiprocessing as tmp

from batchlab.children import environ
from batchlab.data import Dataset, pipeline
from batchlab.data.pipeline import LoadedData
from batchlab.events import FAILED, Event, MetricRows, RunEnded
from batchlab.spec import DataSpec, RunConfig
from batchlab.train.device import resolve_device
from batchlab.train.distributed import Replica, free_port, join, leave
from batchlab.train.inputs import RunInputs
from batchlab.train.loop import train_run
from batchlab.train.prune import PruneOrder

STOP_GRACE_S = 15.0  # the leader's time to report an interrupted run
END_GRACE_S = 10.0  # completed ranks' time to exit by themselves


class _Loaded:
    """A ``load_data`` that returns data loaded once by the launcher (its tensors reach the
    ranks through shared memory: torch.multiprocessing's pickling)."""

    def __init__(self, data: Dataset) -> None:
        self.data = data

    def __call__(self, spec: DataSpec) -> Dataset:
        return self.data


def _loaded_once(config: RunConfig, inputs: RunInputs | None,
                 load_data: Callable[..., LoadedData]) -> RunInputs:
    """The ranks' inputs, with in-memory data loaded here once rather than in every rank (a
    data set's import and decoding cost seconds each). Streamed data (files read per batch)
    is opened by each rank itself."""
    inputs = inputs or RunInputs(load_data=pipeline.load_data)
    data = (load_data if inputs.load_data is pipeline.load_data else inputs.load_data)(config.data)
    if isinstance(data, Dataset):
        return dataclasses.replace(inputs, load_data=_Loaded(data))
    return inputs


def _drop(event: Event) -> None:
    """A follower's sink: the leader alone reports the run."""


def train_rank(config: RunConfig, sink: Callable[[Event], None], rank: int, world: int,
               backend: str, **options: Any) -> RunEnded:
    """Rank ``rank`` of a run over ``world`` processes, in a process group this process has
    joined (here, or Ray Train's workers: ``batchlab.execute.raytrain``): ``train_run`` with its
    ``Replica``. The leader's events go to ``sink``, a follower's nowhere. ``options``:
    ``train_run``'s."""
    replica = Replica(rank, world, config.train.sync_batchnorm, backend)
    return train_run(config, sink if rank == 0 else _drop, replica=replica, **options)


def _rank_main(rank: int, world: int, port: int, backend: str, threads: int, config: RunConfig,
               options: dict[str, Any], events: Any) -> None:
    """One rank: join the group, train, send the leader's events (and any rank's failure)
    to the launcher as (rank, event or error text) pairs."""
    from batchlab.children import exit_with_starter, interrupt_on_usr1

    exit_with_starter()  # a launcher killed with -9 leaves no rank behind
    interrupt_on_usr1()
    # a spawned child inherits "spawn"; its loader processes take the platform's default
    tmp.set_start_method(None, force=True)
    torch.set_num_threads(threads)
    if backend == "nccl":
        torch.cuda.set_device(rank)  # "cuda" in this process means GPU `rank`

    def send(event: Event) -> None:
        events.put((rank, event))

    try:
        join(rank, world, port, backend)
        end = train_rank(config, send, rank, world, backend, **options)
        if rank and end.status == FAILED:
            events.put((rank, end.error or "failed"))
    except KeyboardInterrupt:
        pass
    except Exception as err:  # joining the group failed: the run cannot start
        events.put((rank, f"{type(err).__name__}: {err}"))
    finally:
        leave()


def _context() -> Any:
    """How ranks start: from a fork server where the platform has one, else spawned.

    Never forked from this process: a process that ran torch ops on several threads leaves
    OpenMP in a state in which a forked child hangs at its first parallel op. The fork server
    is a fresh process that imports torch and batchlab once (no op run), and every rank forks
    from it in a fraction of a second; a spawned rank imports them anew (seconds each, more
    on a busy machine). Either way a rank gets this process's sys.path and working folder,
    so a model factory imports as it does here."""
    if "forkserver" not in tmp.get_all_start_methods():
        return tmp.get_context("spawn")
    ctx = tmp.get_context("forkserver")
    # read when the server starts; DistributedDataParallel() imports torch._dynamo (seconds)
    ctx.set_forkserver_preload(["batchlab.train.launch", "torch._dynamo"])
    return ctx


def backend_for(config: RunConfig) -> str:
    """'nccl' when the run trains on CUDA (one GPU per rank, refused when there are fewer),
    else 'gloo'."""
    world = config.train.devices
    if resolve_device(config.train.device).type != "cuda":
        return "gloo"
    if torch.cuda.device_count() < world:
        raise RuntimeError(
            f"train.devices = {world} on CUDA needs {world} GPUs (one per process) and "
            f"{torch.cuda.device_count()} are visible; lower train.devices or set "
            "train.device = 'cpu'")
    return "nccl"


def train_ddp(config: RunConfig, sink: Callable[[Event], None], *,
              checkpoint_path: Path | None = None, max_resume_step: int | None = None,
              inputs: RunInputs | None = None, prune: PruneOrder | None = None,
              load_data: Callable[..., LoadedData] = pipeline.load_data,
              **ignored: Any) -> RunEnded:
    """Train ``config`` over ``config.train.devices`` processes; ``sink`` gets the run's events
    as from ``train_run`` (same arguments; ``inputs`` must pickle: each rank gets a copy).
    Returns how the run ended. ``ignored``: ``train_run`` options with no meaning here (the
    checkpoint timer: each rank keeps its own)."""
    run_id = config.run_id()
    world = config.train.devices
    try:
        backend = backend_for(config)
    except RuntimeError as err:
        return _fail(sink, run_id, 0, str(err))
    try:
        inputs = _loaded_once(config, inputs, load_data)
    except Exception as err:  # as train_run reports a data set it cannot load
        return _fail(sink, run_id, 0, "".join(traceback.format_exception_only(err)).strip())
    threads = max(1, torch.get_num_threads() // world)
    options = {"checkpoint_path": checkpoint_path, "max_resume_step": max_resume_step,
               "inputs": inputs, "prune": prune}
    ctx = _context()
    events = ctx.Queue()
    procs: list[Any] = []
    port = free_port()
    try:
        # the ranks read these when torch loads: set while they start
        with environ(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads)):
            for rank in range(world):
                procs.append(ctx.Process(
                    target=_rank_main, name=f"batchlab-rank-{rank}", daemon=False,
                    args=(rank, world, port, backend, threads, config, options, events)))
                procs[-1].start()  # pickles its arguments
    except (pickle.PicklingError, AttributeError, TypeError) as err:
        _stop(procs, None)
        return _fail(sink, run_id, 0, (
            f"train.devices = {world} trains in {world} spawned processes, which need the run's "
            f"model, data, loss and optimizer builders to pickle, and they do not ({err}); "
            "define them at the top level of a module file, or train on one device"))
    relay = _Relay(sink)
    try:
        return relay.follow(events, procs, run_id)
    except KeyboardInterrupt:
        for p in procs:
            if p.is_alive():
                os.kill(p.pid, signal.SIGUSR1)
        relay.follow(events, procs, run_id, deadline=time.monotonic() + STOP_GRACE_S)
        raise
    finally:
        _stop(procs, relay.end)


class _Relay:
    """The launcher's side of a run: the leader's events to ``sink``, until the run ends."""

    def __init__(self, sink: Callable[[Event], None]) -> None:
        self.sink = sink
        self.end: RunEnded | None = None
        self.step = 0

    def follow(self, events: Any, procs: list[Any], run_id: str,
               deadline: float | None = None) -> RunEnded:
        """Relay until the leader's ``RunEnded`` (returned), a rank's failure or death (the run
        then ends failed here), or ``deadline``."""
        while self.end is None:
            if deadline is not None and time.monotonic() > deadline:
                return _fail(self.sink, run_id, self.step, "interrupted: the leader did not stop")
            try:
                rank, item = events.get(timeout=0.2)
            except queue.Empty:
                dead = [(r, p.exitcode) for r, p in enumerate(procs)
                        if p.exitcode not in (None, 0)]
                if dead and events.empty():
                    rank, code = dead[0]
                    self.end = _fail(self.sink, run_id, self.step,
                                     f"rank {rank} of {len(procs)}: its process died (exit code {code})")
                continue
            if isinstance(item, str):
                self.end = _fail(self.sink, run_id, self.step, f"rank {rank} of {len(procs)}: {item}")
                continue
            self.sink(item)
            if isinstance(item, MetricRows):
                self.step = max(self.step, item.step)
            if isinstance(item, RunEnded):
                self.end = item
        return self.end


def _fail(sink: Callable[[Event], None], run_id: str, step: int, error: str) -> RunEnded:
    event = RunEnded(run_id, FAILED, step, 0.0, {}, error)
    sink(event)
    return event


def _stop(procs: list[Any], end: RunEnded | None) -> None:
    """End every rank: a completed run's ranks get ``END_GRACE_S`` to exit; after any other
    end the followers wait in a collective nobody joins, so they are terminated at once."""
    procs = [p for p in procs if p.pid is not None]  # one whose start failed has nothing to end
    if end is not None and end.status == "completed":
        deadline = time.monotonic() + END_GRACE_S
        for p in procs:
            p.join(timeout=max(0.0, deadline - time.monotonic()))
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(timeout=5.0)
        if p.is_alive():
            p.kill()
            p.join()
