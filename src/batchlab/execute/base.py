"""The executor interface: run a list of tasks, report every event to the driver.

An executor decides *where* runs train (this process, a local process pool, a Ray cluster);
the trainer and the store never know which. The driver calls ``execute(next_task, on_event)``;
the executor pulls tasks with ``next_task()`` whenever it has room for one (the driver claims
each run in the store at that moment; None means no more) and hands every event to
``on_event``, which writes it to the store. For every task it took, an executor delivers a
final ``RunEnded`` (completed, diverged, failed or interrupted). On Ctrl-C it stops its runs,
delivers their last events, and re-raises KeyboardInterrupt.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from batchlab.events import Event, MetricRows, RunStarted
from batchlab.spec import RunConfig
from batchlab.train.prune import PruneOrder

if TYPE_CHECKING:
    from batchlab.train.checkpoint import CheckpointLocation


@dataclass(frozen=True)
class RunTask:
    """One run to train: its config, where its checkpoint lives, how far it may resume, and
    when to stop it early (``sweep.prune``; None: never)."""

    run_id: str
    config: RunConfig
    checkpoint_path: CheckpointLocation | None  # a file; on Ray, storage every node reaches
    max_resume_step: int | None
    prune: PruneOrder | None = None


TaskSource = Callable[[], "RunTask | None"]


class StoredSteps:
    """Per run, the last step the store holds every row for, followed from the same events the
    driver writes to the store. A retried task may resume from any checkpoint up to there; the
    original task only knew the progress at its first claim (usually 0), so without this a
    retry would ignore the checkpoint its first attempt wrote."""

    def __init__(self) -> None:
        self.steps: dict[str, int] = {}

    def track(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.steps[event.run_id] = event.resumed_from
        elif isinstance(event, MetricRows):
            self.steps[event.run_id] = max(self.steps.get(event.run_id, 0), event.step)

    def retry(self, task: RunTask) -> RunTask:
        """``task`` allowed to resume from every checkpoint the store now covers."""
        return allow_resume(task, self.steps.get(task.run_id))


def allow_resume(task: RunTask, stored: int | None) -> RunTask:
    """``task`` with ``max_resume_step`` raised to ``stored`` (the store's covered step) when
    that is later; unchanged when nothing is known or any checkpoint is already allowed."""
    if stored is None or task.max_resume_step is None or stored <= task.max_resume_step:
        return task
    return dataclasses.replace(task, max_resume_step=stored)


class Executor(Protocol):
    def execute(self, next_task: TaskSource, on_event: Callable[[Event], None]) -> None: ...
