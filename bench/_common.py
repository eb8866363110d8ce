"""Helpers shared by the benchmark scripts in bench/ (not a test module, not part of batchlab).

Everything here is small on purpose: building a RunConfig from plain dicts, running the
trainer with an in-memory sink, reading the rows it emitted, medians and a plain-text table.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from batchlab.data import Dataset
from batchlab.events import COMPLETED, Event, MetricRows, RunEnded
from batchlab.spec import RunConfig, spec_from_dict
from batchlab.train.loop import train_run


def run_config(data: dict[str, Any], model: dict[str, Any], train: dict[str, Any]) -> RunConfig:
    """A validated RunConfig from the three spec sections (the device is pinned to the CPU)."""
    spec = spec_from_dict({"data": data, "model": model, "train": {"device": "cpu", **train}})
    return RunConfig(data=spec.data, model=spec.model, train=spec.train)


def train_collect(config: RunConfig, data: Dataset | None = None) -> tuple[RunEnded, list[Event]]:
    """Run batchlab's trainer in this process; return how it ended and every event it emitted.

    The sink is ``list.append``, the cheapest sink there is, so what is measured is the trainer
    and not a store. ``data``: hand over an already loaded Dataset (the trainer's own
    ``load_data`` hook) so a benchmark does not reload it for every run.
    """
    events: list[Event] = []
    if data is None:
        ended = train_run(config, events.append)
    else:
        ended = train_run(config, events.append, load_data=lambda spec: data)
    if ended.status != COMPLETED:
        raise RuntimeError(f"batchlab run {ended.run_id} ended {ended.status}: {ended.error}")
    return ended, events


def metric_rows(events: Sequence[Event], name: str) -> list[tuple[int, float]]:
    """(step, value) of every row called ``name`` in the emitted events, in step order."""
    rows = [(r[1], r[2]) for e in events if isinstance(e, MetricRows) for r in e.rows if r[0] == name]
    return sorted(rows)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def set_threads(threads: int) -> None:
    torch.set_num_threads(threads)


def machine_line() -> str:
    """One line naming what the numbers were measured on."""
    return (
        f"{time.strftime('%Y-%m-%d %H:%M')}  {platform.processor() or platform.machine()}  "
        f"python {platform.python_version()}  torch {torch.__version__}  "
        f"torch threads (default) {torch.get_num_threads()}\n{load_line()}"
    )


def load_line() -> str:
    """The 1-minute load average against the core count: other work on the machine skews timings."""
    load = os.getloadavg()[0]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    warn = "  (busy machine: other processes compete for the cores, timings are noisy)" if (
        load > cores * 0.75) else ""
    return f"load average (1 min): {load:.2f} on {cores} cores{warn}"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A right-aligned plain-text table (first column left-aligned)."""
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        first = row[0].ljust(widths[0])
        return "  ".join([first, *(c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True))])

    print(line(cells[0]))
    print("  ".join("-" * w for w in widths))
    for row in cells[1:]:
        print(line(row))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value == 0 or 1e-3 <= abs(value) < 1e6:
            return f"{value:.4g}" if abs(value) < 100 else f"{value:,.0f}"
        return f"{value:.3e}"
    return str(value)


# --------------------------------------------------------------------------- added for probe_cost.py and
# executor_overhead.py: timing wrappers (nothing above depends on them)


class Stopwatch:
    """``with Stopwatch() as sw: ...`` then ``sw.wall`` (perf_counter) and ``sw.cpu`` (this thread's
    CPU time, ``time.thread_time``: with one torch thread it is the work done, whatever else
    competes for the cores)."""

    wall: float = 0.0
    cpu: float = 0.0

    def __enter__(self) -> Stopwatch:
        self._wall0, self._cpu0 = time.perf_counter(), time.thread_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._wall0
        self.cpu = time.thread_time() - self._cpu0


class CallTimer:
    """Wraps ``owner.name`` (a module function or a class method) so every call is counted and
    its wall time summed: ``with CallTimer(module, "fn") as t: ...`` then ``t.calls`` and
    ``t.seconds`` (and ``t.tally``, the sum of ``tally(*args, **kwargs)`` when given).
    ``clock``: ``time.perf_counter`` (wall, default) or e.g. ``time.thread_time``. The original
    attribute is put back on exit. Only two clock reads are added per call, so it can stay on
    while a probe runs.
    """

    def __init__(self, owner: Any, name: str, tally: Callable[..., float] | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.owner, self.name, self._tally, self._clock = owner, name, tally, clock
        self.calls = 0
        self.seconds = 0.0
        self.tally = 0.0  # sum of tally(*args, **kwargs) over the calls (e.g. examples per step)

    def __enter__(self) -> CallTimer:
        original = self._original = self.owner.__dict__[self.name]
        timer = self

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = timer._clock()
            try:
                return original(*args, **kwargs)
            finally:
                timer.seconds += timer._clock() - start
                timer.calls += 1
                if timer._tally is not None:
                    timer.tally += timer._tally(*args, **kwargs)

        setattr(self.owner, self.name, wrapper)
        return self

    def __exit__(self, *exc: object) -> None:
        setattr(self.owner, self.name, self._original)


class _TrainerThreadClock:
    """Stands in for the ``time`` module inside batchlab.train.loop (it only calls perf_counter)."""

    perf_counter = staticmethod(time.thread_time)


class trainer_cpu_clock:  # noqa: N801 (used like a function: ``with trainer_cpu_clock(): ...``)
    """While active, the trainer's own timings (``summary["train_time"]``, ``samples_per_s``)
    use this thread's CPU clock instead of the wall clock: they then cover exactly the usual
    region (training steps, evaluation excluded) without counting time other processes hold
    the core. Meaningful with one torch thread in this thread only."""

    def __enter__(self) -> None:
        import batchlab.train.loop as loop

        self._loop, self._saved = loop, loop.time
        loop.time = _TrainerThreadClock  # type: ignore[assignment]

    def __exit__(self, *exc: object) -> None:
        self._loop.time = self._saved
