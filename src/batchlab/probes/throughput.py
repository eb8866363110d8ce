"""Training throughput (samples/s) and peak step memory per batch size, and the knee.

For each batch size, on a fresh model and optimizer (``probes.common.fresh_setup``): the
trainer's step (``memory.train_step``: random-permutation batches of in-memory tensors,
``F.cross_entropy``, ``zero_grad(set_to_none=True)``, backward, step). On streamed data
(``data.pipeline = "stream"``) a batch size decodes the batches ``memory.measure_batches``
says (1 on CPU, 2 on CUDA) before anything is timed and its steps cycle them: the curve is
the step's, not the decoding's, and the folder is never read whole (a note in the result says
so). The first step(s) measure peak memory (``memory.steady_step_memory``: one on CPU, two on
CUDA) and count as warm-up; the rest of ``warmup_steps`` run untimed too (first-call costs:
allocator growth, oneDNN/cuDNN primitive selection). Then ``windows`` timed windows, each at
least one step and ``window_seconds`` long (or exactly ``window_steps`` steps), each bracketed by CUDA
synchronisation on a GPU; samples/s is the median over windows, which shrugs off the odd
window that another process on a shared machine slowed down.

On a busy machine the median is not enough (a loaded 2-core machine once read
89 -> 154,201 -> 8,008 samples/s). So the spread of a batch size's windows, (max - min) /
median of their samples/s, is checked: above ``max_spread`` (20 %) the windows are measured
again, up to ``repeats`` (2) more rounds, and the first round within the limit is kept. A batch
size still too noisy after that keeps its least-spread round but marks the curve *unreliable*:
no knee is computed from it, and the result says which sizes were noisy and what to do (the
pure rules are in ``probes/knee.py``).

Threads: the probe measures with the torch threads a run of ``batchlab sweep --workers N``
trains with (``batchlab.cores.sweep_threads``: ``train.threads``, else the process default
for one worker, else cores // N), so the curve describes the runs it advises on.

Cost: about ``warmup + windows * window_seconds`` per batch size (~0.35 s with the defaults:
3 windows of 0.1 s, cut from 5 of 0.2 s after bench/probe_cost.py measured the curve at 35-44
epochs of the small built-in sets).
Where one step outlasts a window (judged by the memory step), windows hold one step each and
the step count is the whole cost, so the memory step is the only warm-up and
``LONG_STEP_WINDOWS`` (3) windows are timed: 4 steps instead of 8 at the large end, which
dominates the cost. A default curve thus processes about 8 batches of the largest size
(2048): under one epoch of an MNIST-sized set, while a tiny set (digits: 1437 examples) pays
the ~3 s floor of ``windows * window_seconds`` over the sizes. A batch size re-measured on a
busy machine costs up to ``1 + repeats`` times its windows. ``wall_time``, ``seconds`` say what
it took.

The knee (``probes.knee.find_knee``) is the smallest batch size beyond which doubling buys
less than ``knee_gain`` (default 1.1, i.e. under 10% more samples/s per doubling).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any, ClassVar

import torch
from torch import nn

from batchlab.cores import available_cores, sweep_threads
from batchlab.data.pipeline import LoadedData
from batchlab.data.stream import StreamData
from batchlab.errors import BatchlabError
from batchlab.probes.common import ProbeError, fresh_setup, isolated_rng, load_probe_data
from batchlab.probes.knee import MAX_SPREAD, REPEATS, Settled, Window, knee_unless_noisy, settle
from batchlab.probes.memory import (
    format_size,
    is_oom,
    measure_batches,
    probe_device,
    release_memory,
    setup_batches,
    setup_optimizer,
    steady_step_memory,
    train_step,
)
from batchlab.probes.plotting import Plottable
from batchlab.spec import RunConfig
from batchlab.train.inputs import RunInputs

DEFAULT_BATCH_SIZES = tuple(2**k for k in range(3, 12))  # 8 .. 2048
LONG_STEP_WINDOWS = 3  # windows at a batch size whose single step outlasts a window


# --------------------------------------------------------------------------- the curve


@dataclass(frozen=True)
class ThroughputResult(Plottable):
    """One throughput curve. Lists are parallel, one entry per measured batch size, ascending.

    ``samples_per_s``: median over the timed windows (``window_samples_per_s``, the kept
    round); ``window_spread``: (max - min) / median of those windows; ``rounds``: rounds of
    windows measured (more than one when a round spread more than ``max_spread``);
    ``reliable``: every batch size ended within ``max_spread`` (else no knee is computed);
    ``peak_bytes``: the step's peak memory (``memory_method``); ``steps_timed``: steps in
    the windows; ``seconds``: wall time per batch size, warm-up and setup included.
    ``skipped``: batch sizes not measured and why (above the training set; after an OOM).
    ``oom``: ``{"batch_size", "error"}`` when a batch size ran out of memory (the curve ends
    there), else None.
    """

    KIND: ClassVar[str] = "throughput"

    batch_sizes: list[int]
    samples_per_s: list[float]
    window_samples_per_s: list[list[float]]
    peak_bytes: list[int]
    steps_timed: list[int]
    seconds: list[float]
    window_spread: list[float]
    rounds: list[int]
    reliable: bool
    max_spread: float
    knee: int | None
    knee_reason: str
    knee_gain: float
    skipped: list[dict[str, Any]]
    oom: dict[str, Any] | None
    n_train: int
    device: str
    threads: int
    threads_reason: str
    memory_method: str
    settings: dict[str, Any]
    wall_time: float
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, for ``Store.add_probe(experiment, "throughput", config, result)``."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class _Point:
    settled: Settled
    peak: int
    method: str
    long_steps: bool

    @property
    def rate(self) -> float:
        return median(self.settled.rates)


def throughput_curve(config: RunConfig, *, batch_sizes: Sequence[int] | None = None,
                     warmup_steps: int = 2, windows: int = 3, window_seconds: float = 0.1,
                     window_steps: int | None = None, knee_gain: float = 1.1,
                     max_spread: float = MAX_SPREAD, repeats: int = REPEATS, workers: int = 1,
                     model: nn.Module | None = None,
                     inputs: RunInputs | None = None) -> ThroughputResult:
    """Measure samples/s and peak memory of ``config``'s training step at each batch size.

    ``batch_sizes``: default powers of two 8..2048; sizes above the training set are skipped
    (listed in ``skipped``). ``warmup_steps`` untimed steps (at least the memory step),
    then ``windows`` windows of ``window_seconds`` (at least one step each), or of exactly
    ``window_steps`` steps when given (time windows at a size whose step outlasts a window:
    no warm-up beyond the memory step and at most 3 windows). ``model``: measure this
    module's architecture instead of ``config.model`` (each batch size trains its own copy;
    the module is never touched). ``inputs``: the caller's data/model/loss/optimizer builders.
    ``max_spread``, ``repeats``: a batch size whose windows spread more than ``max_spread``
    is measured again, up to ``repeats`` more rounds; if still noisy the curve is reported
    unreliable and has no knee (see the module doc).
    Threads: those of a run of ``batchlab sweep --workers workers`` (``train.threads`` when
    set, else the process default for 1 worker, else cores // workers), applied for the
    probe and restored after; ``threads_reason`` says which.

    An out-of-memory error at a batch size ends the curve there (recorded in ``oom``); any
    other failure raises ProbeError quoting it (the original is its ``__cause__``).
    torch's global RNG state is unchanged afterwards.
    """
    _check_settings(batch_sizes, warmup_steps, windows, window_seconds, window_steps, knee_gain)
    if not max_spread > 0 or repeats < 0 or workers < 1:
        raise ProbeError(f"need max_spread > 0, repeats >= 0 and workers >= 1; got {max_spread}, "
                         f"{repeats} and {workers}.")
    threads, threads_reason = sweep_threads(config.train.threads, workers, torch.get_num_threads(),
                                            available_cores())
    t0 = time.perf_counter()
    device = probe_device(config)
    data = load_probe_data(config, inputs)
    n_train = len(data.train_y)
    wanted = sorted(set(batch_sizes if batch_sizes is not None else DEFAULT_BATCH_SIZES))
    sizes = [b for b in wanted if b <= n_train]
    skipped = [{"batch_size": b, "reason": f"larger than the {n_train} training examples"}
               for b in wanted if b > n_train]
    if not sizes:
        raise ProbeError(f"every batch size asked for ({wanted}) is larger than the {n_train} "
                         "training examples; pick smaller batch sizes or use more data.")
    points: dict[int, _Point] = {}
    seconds: list[float] = []
    oom = None
    with _threads(threads), isolated_rng():
        for i, b in enumerate(sizes):
            started = time.perf_counter()
            try:
                points[b] = _measure(config, data, b, model, warmup_steps, windows,
                                     window_seconds, window_steps, max_spread, repeats, inputs)
            except BatchlabError:
                raise
            except Exception as err:
                if not is_oom(err):
                    raise ProbeError(
                        f"a training step at batch size {b} failed with {type(err).__name__}: "
                        f"{err}. Make the model train at this batch size first (batchlab run), "
                        "or leave it out of batch_sizes.") from err
                oom = {"batch_size": b, "error": str(err).splitlines()[0][:200]}
            if oom is not None:
                release_memory(device)  # outside the except block: the traceback is gone
                skipped += [{"batch_size": c, "reason": f"after the out-of-memory error at {b}"}
                            for c in sizes[i + 1:]]
                break
            seconds.append(time.perf_counter() - started)
    measured = list(points)
    rates = [points[b].rate for b in measured]
    settled = [points[b].settled for b in measured]
    knee, why = knee_unless_noisy(measured, rates, [p.spread for p in settled],
                                  [p.reliable for p in settled], knee_gain, max_spread)
    # each skip with its reason (the stored result has it; a bare list leaves the user guessing)
    by_reason: dict[str, list[int]] = {}
    for skip in skipped:
        by_reason.setdefault(skip["reason"], []).append(skip["batch_size"])
    notes = [f"skipped batch sizes {sizes_}: {reason}" for reason, sizes_ in by_reason.items()]
    if isinstance(data, StreamData):
        n = measure_batches(device)
        notes.append(f"streamed data: each batch size decoded {n} batch{'es' if n > 1 else ''} "
                     f"before timing and its steps cycle {'them' if n > 1 else 'it'}, so the curve "
                     "is the training step's; the decoding (data.workers loader processes) is not "
                     "in it")
    if repeated := [b for b, p in zip(measured, settled, strict=True) if p.rounds > 1]:
        notes.append(f"batch sizes {repeated}: windows spread more than {max_spread:.0%}, so they "
                     "were measured again (a busy machine)")
    if long := [b for b in measured if points[b].long_steps]:
        notes.append(f"batch sizes {long}: one step outlasts a {window_seconds:g} s window, so the "
                     f"memory step is the warm-up and {min(windows, LONG_STEP_WINDOWS)} windows "
                     "are timed")
    return ThroughputResult(
        batch_sizes=measured, samples_per_s=rates,
        window_samples_per_s=[p.rates for p in settled],
        peak_bytes=[points[b].peak for b in measured],
        steps_timed=[p.steps for p in settled], seconds=seconds,
        window_spread=[p.spread for p in settled], rounds=[p.rounds for p in settled],
        reliable=all(p.reliable for p in settled), max_spread=max_spread,
        knee=knee, knee_reason=why, knee_gain=knee_gain, skipped=skipped, oom=oom,
        n_train=n_train, device=str(device), threads=threads, threads_reason=threads_reason,
        memory_method="/".join(sorted({p.method for p in points.values()})),
        settings={"warmup_steps": warmup_steps, "windows": windows,
                  "window_seconds": window_seconds, "window_steps": window_steps,
                  "repeats": repeats, "workers": workers},
        wall_time=time.perf_counter() - t0, notes=notes)


def _measure(config: RunConfig, data: LoadedData, batch_size: int, model: nn.Module | None,
             warmup_steps: int, windows: int, window_seconds: float,
             window_steps: int | None, max_spread: float, repeats: int,
             inputs: RunInputs | None = None) -> _Point:
    """One batch size on a fresh model and optimizer: memory step, warm-up, timed windows
    (rounds of them until they agree: ``probes.knee.settle``)."""
    setup = fresh_setup(config, data, model=model, inputs=inputs)
    opt = setup_optimizer(setup, batch_size)
    batches = setup_batches(setup, batch_size, torch.Generator().manual_seed(setup.seed))
    started = time.perf_counter()
    memory = steady_step_memory(setup.model, opt, batches, setup.loss_fn, setup.precision)
    memory_step = (time.perf_counter() - started) / memory.detail["steps"]

    def step() -> None:
        xb, yb = next(batches)
        train_step(setup.model, opt, xb, yb, setup.loss_fn, precision=setup.precision)

    # A step that outlasts a window is warm after the memory step (every buffer has been
    # allocated once), and its windows hold one step each: the step count is then the whole
    # cost, so no further warm-up and fewer windows keep the large sizes from dominating it.
    long_steps = window_steps is None and memory_step >= window_seconds
    for _ in range(0 if long_steps else warmup_steps - memory.detail["steps"]):
        step()
    n_windows = min(windows, LONG_STEP_WINDOWS) if long_steps else windows

    def measure_round() -> list[Window]:
        return [timed_window(step, setup.device, window_seconds, window_steps)
                for _ in range(n_windows)]

    return _Point(settle(measure_round, batch_size, max_spread, repeats), memory.bytes,
                  memory.method, long_steps)


def timed_window(step: Callable[[], None], device: torch.device, seconds: float,
                  steps: int | None, clock: Callable[[], float] = time.perf_counter) -> Window:
    """Run steps for ``seconds`` (at least one) or exactly ``steps``; (steps, elapsed).

    On CUDA the clock runs from one synchronisation to the next, so queued kernels are counted;
    the stop test reads the host clock only, to keep per-step syncs out of the window.
    ``clock``: what ``elapsed`` is measured with (say ``time.thread_time``, the work of a
    one-thread step whatever else holds the cores); the window's length is always wall time.
    """
    _sync(device)
    start, begun = time.perf_counter(), clock()
    n = 0
    while True:
        step()
        n += 1
        if (n >= steps) if steps is not None else (time.perf_counter() - start >= seconds):
            break
    _sync(device)
    return n, clock() - begun


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextmanager
def _threads(threads: int) -> Iterator[None]:
    """Apply a run's thread count for the probe, as the executors do for a run; restore after."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _check_settings(batch_sizes: Sequence[int] | None, warmup_steps: int, windows: int,
                    window_seconds: float, window_steps: int | None, knee_gain: float) -> None:
    if batch_sizes is not None and (not batch_sizes or any(int(b) != b or b < 1 for b in batch_sizes)):
        raise ProbeError(f"batch_sizes must be positive integers, e.g. 8,16,32; got {batch_sizes}.")
    if warmup_steps < 0 or windows < 1:
        raise ProbeError(f"need warmup_steps >= 0 and windows >= 1, got {warmup_steps}, {windows}.")
    if window_seconds <= 0 or (window_steps is not None and window_steps < 1):
        raise ProbeError("window_seconds must be > 0 and window_steps >= 1 when given.")
    if not knee_gain > 1:
        raise ProbeError(f"knee_gain must be > 1 (1.1 = 10% more samples/s), got {knee_gain}.")


# --------------------------------------------------------------------------- the plot


def plot_throughput(result: ThroughputResult, path: str | Path) -> Path:
    """Draw samples/s (left axis) and peak memory (right axis) against batch size (log2 x axis),
    with the knee marked, into ``path`` (format from the suffix). No pyplot: no global state."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.2), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(result.batch_sizes, result.samples_per_s, "o-", color="tab:blue", label="samples/s")
    ax.set_xscale("log", base=2)
    ax.set_xticks(result.batch_sizes, [str(b) for b in result.batch_sizes])
    ax.set_xlabel("batch size")
    ax.set_ylabel("training samples/s (median)", color="tab:blue")
    mem = ax.twinx()
    mem.plot(result.batch_sizes, [b / 2**20 for b in result.peak_bytes], "s--", color="tab:orange",
             label="peak memory")
    mem.set_ylabel(f"peak step memory, MiB ({result.memory_method})", color="tab:orange")
    if result.knee is not None:
        ax.axvline(result.knee, color="gray", linestyle=":")
        ax.annotate(f"knee: {result.knee}", (result.knee, max(result.samples_per_s)),
                    textcoords="offset points", xytext=(4, -12), color="gray")
    if not result.reliable:
        ax.set_title(f"throughput ({result.device}): UNRELIABLE, timings too noisy; no knee")
    elif result.oom is not None:
        ax.set_title(f"throughput ({result.device}); out of memory at {result.oom['batch_size']}")
    else:
        top = format_size(max(result.peak_bytes)) if result.peak_bytes else "-"
        ax.set_title(f"throughput ({result.device}, {result.threads} thread(s)); peak {top}")
    fig.savefig(path, dpi=110)
    return Path(path)
