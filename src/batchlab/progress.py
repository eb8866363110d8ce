"""Rich progress bars for a sweep: one bar for the runs, one per run in flight."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from batchlab.events import INTERRUPTED, Event, MetricRows, RunEnded, RunStarted
from batchlab.plan import RunSpec
from batchlab.results import schedule_label


def run_label(run: RunSpec) -> str:
    t = run.config.train
    return f"{run.run_id[:8]} B={t.batch_size} lr={t.lr} {schedule_label(t.model_dump())}"


class SweepProgress:
    """Observer for ``run_sweep``: ``on_plan`` then ``on_event`` for every stored event."""

    def __init__(self, console: Console, starting: str = "") -> None:
        """``starting``: what happens before the first run reports (e.g. workers starting),
        shown on the overall bar until then."""
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
            console=console, transient=False,
        )
        self.labels: dict[str, str] = {}
        self.bars: dict[str, Any] = {}
        self.overall: Any = None
        self.starting = starting
        self.done_before = 0

    def __enter__(self) -> SweepProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def notice(self, line: str) -> None:
        """A message about the sweep (a run retrained and why), printed above the bars: plain
        text, not rich markup ('data[v2].npz' in a data note must not lose its '[v2]')."""
        self.progress.console.print(line, markup=False)

    def _stored(self) -> str:
        return f"{self.done_before} already in the store" if self.done_before else ""

    def on_plan(self, runs: list[RunSpec], todo: set[str]) -> None:
        self.labels = {r.run_id: run_label(r) for r in runs}
        self.done_before = len(runs) - len(todo)
        info = ", ".join(s for s in (self._stored(), self.starting if todo else "") if s)
        self.overall = self.progress.add_task(
            "runs", total=len(runs), completed=self.done_before, info=info)

    def on_event(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            if self.starting and self.overall is not None:  # the workers are up
                self.starting = ""
                self.progress.update(self.overall, info=self._stored())
            info = f"resumed at step {event.resumed_from}" if event.resumed_from else ""
            self.bars[event.run_id] = self.progress.add_task(
                self.labels.get(event.run_id, event.run_id[:8]), total=event.total_steps,
                completed=event.resumed_from, info=info)
        elif isinstance(event, MetricRows) and event.run_id in self.bars:
            acc = [r[2] for r in event.rows if r[0] == "val_acc"]
            update: dict[str, Any] = {"completed": event.step}
            if acc:
                update["info"] = f"val acc {acc[-1]:.3f}"
            self.progress.update(self.bars[event.run_id], **update)
        elif isinstance(event, RunEnded):
            bar = self.bars.pop(event.run_id, None)
            if bar is not None:
                self.progress.remove_task(bar)
            # an interrupted run is not done: it resumes next time, so it does not count
            if self.overall is not None and event.status != INTERRUPTED:
                self.progress.advance(self.overall)
