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

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from batchlab.events import Event
from batchlab.spec import RunConfig


@dataclass(frozen=True)
class RunTask:
    """One run to train: its config, where its checkpoint lives, how far it may resume."""

    run_id: str
    config: RunConfig
    checkpoint_path: Path | None
    max_resume_step: int | None


TaskSource = Callable[[], "RunTask | None"]


class Executor(Protocol):
    def execute(self, next_task: TaskSource, on_event: Callable[[Event], None]) -> None: ...
