"""Plain-text progress of a sweep for the Python API: one line when the plan is known and one
per run that ends, printed as it happens.

Plain lines (not a live bar) read the same in a terminal, a Jupyter or VS Code notebook, a log
file and CI output: a notebook shows each line as soon as it is printed, with no widget library.
``bl.sweep(..., verbose=False)`` prints nothing.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, TextIO

from batchlab.events import Event, RunEnded
from batchlab.plan import RunSpec
from batchlab.results import schedule_label

if TYPE_CHECKING:
    from batchlab.execute.dryrun import DryRun


def _number(value: object) -> str | None:
    return f"{value:.4g}" if isinstance(value, int | float) and not isinstance(value, bool) else None


def ended_line(label: str, event: RunEnded) -> str:
    """'B=32 lr=0.05 constant: completed, val acc 0.912, val loss 0.31, 12 steps, 1.2 s'."""
    parts = [event.status]
    for key, name in (("best_val_acc", "best val acc"), ("final_val_loss", "val loss")):
        if (shown := _number(event.summary.get(key))) is not None:
            parts.append(f"{name} {shown}")
    parts.append(f"{event.steps} step{'' if event.steps == 1 else 's'}, {event.wall_time:.1f} s")
    if event.error:
        parts.append(event.error.strip().splitlines()[-1])
    return f"{label}: {', '.join(parts)}"


#: Point keys the label shows already (batch size, LR, schedule) or that the run id stands for.
_SHOWN = ("train.batch_size", "train.lr", "train.schedule")


def _shown_value(value: object) -> str:
    return _number(value) or str(value)


def differing_keys(runs: list[RunSpec]) -> list[str]:
    """The sweep-point keys, beyond batch size, LR and schedule, whose values differ between
    ``runs`` (a function sweep's own keys, a seed, a model field), in first-seen order."""
    keys: dict[str, set[str]] = {}
    for run in runs:
        for key, value in run.point.items():
            if not key.startswith(_SHOWN):
                keys.setdefault(key, set()).add(repr(value))
    missing = {k for k in keys if any(k not in run.point for run in runs)}
    return [k for k, values in keys.items() if len(values) > 1 or k in missing]


def point_label(run: RunSpec, keys: list[str]) -> str:
    """' width=16 seed=1': the run's values of ``keys``, named without the ``train.options.``
    or ``train.`` prefix (a key of the user's own reads as it was given)."""
    parts = []
    for key in keys:
        if key in run.point:
            name = key.removeprefix("train.options.").removeprefix("train.")
            parts.append(f" {name}={_shown_value(run.point[key])}")
    return "".join(parts)


def run_label(run: RunSpec, keys: list[str]) -> str:
    """'B=32 lr=0.05 constant width=16': what tells ``run`` apart (``keys``: differing_keys)."""
    t = run.config.train
    return (f"B={t.batch_size} lr={_number(t.lr) or t.lr} {schedule_label(t.model_dump())}"
            f"{point_label(run, keys)}")


def plan_lines(plan: DryRun, where: str) -> list[str]:
    """A dry run as plain lines (``bl.sweep(..., dry_run=True)``): a title, one line per run
    (its id's first 8 characters, '-' while its lr = "auto" is unmeasured, as the id follows
    from the LR) with what the sweep would do with it, and the count line."""
    keys = differing_keys([p.run for p in plan.runs])
    rows = [f"  {'-' if p.unmeasured else p.run.run_id[:8]:8} {run_label(p.run, keys)}: {p.would}"
            for p in plan.runs]
    return [f"dry run of sweep '{plan.experiment}' ({where}): nothing is trained or written",
            *rows, plan.count()]


class LineProgress:
    """Observer for ``run_sweep`` (``on_plan``, ``on_event``) printing to ``stream``."""

    def __init__(self, experiment: str, stream: TextIO | None = None) -> None:
        self.experiment = experiment
        self.stream = stream
        self.labels: dict[str, str] = {}
        self.todo = 0
        self.done = 0

    def _print(self, line: str) -> None:
        print(line, file=self.stream or sys.stdout, flush=True)  # a notebook shows it now

    def on_plan(self, runs: list[RunSpec], todo: set[str]) -> None:
        keys = differing_keys(runs)  # what else tells the runs apart: width=16 vs width=64
        for run in runs:
            self.labels[run.run_id] = f"{run.run_id[:8]} {run_label(run, keys)}"
        self.todo = len(todo)
        skipped = len(runs) - len(todo)
        kept = f", {skipped} already in the store" if skipped else ""
        count = f"{len(runs)} run" + ("" if len(runs) == 1 else "s")
        self._print(f"sweep '{self.experiment}': {count}{kept}; training {len(todo)}")

    def on_event(self, event: Event) -> None:
        if isinstance(event, RunEnded):
            self.done += 1
            count = f"[{self.done}/{self.todo}]" if self.done <= self.todo else f"[{self.done}]"
            self._print(f"{count} {ended_line(self.labels.get(event.run_id, event.run_id), event)}")
