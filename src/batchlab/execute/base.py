"""The executor interface: run a list of tasks, report every event to the driver.

An executor decides *where* runs train (this process, a local process pool, a Ray cluster);
the trainer and the store never know which. The driver calls ``execute(tasks, on_event)`` and
writes each event to the store as it arrives; an executor must deliver, for every task it
started, a final ``RunEnded`` (completed, diverged, failed or interrupted). On Ctrl-C it stops
its runs, delivers their last events, and re-raises KeyboardInterrupt.
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


class Executor(Protocol):
    def execute(self, tasks: list[RunTask], on_event: Callable[[Event], None]) -> None: ...
