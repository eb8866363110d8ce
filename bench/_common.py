"""Helpers shared by the benchmark scripts in bench/ (not a test module, not part of batchlab).

Everything here is small on purpose: building a RunConfig from plain dicts, running the
trainer with an in-memory sink, reading the rows it emitted, medians and a plain-text table.
"""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Sequence
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
        f"torch threads (default) {torch.get_num_threads()}"
    )


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
