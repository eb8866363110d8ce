"""What a training run reports, as plain picklable data.

The trainer emits these to a sink (a callable). Where they go is the executor's business: the
inline executor hands them straight to the store writer; a process pool or Ray sends them back
to the driver, which alone writes the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# One metric value: (name, step, value, epoch, examples_seen, wall_time_s).
# step counts optimizer updates done (1-based for the loss of update t; 0 = before training).
MetricRow = tuple[str, int, float, float, int, float]

COMPLETED, DIVERGED, FAILED, INTERRUPTED, RUNNING, PENDING = (
    "completed", "diverged", "failed", "interrupted", "running", "pending"
)
# stopped early by sweep.prune (hopeless, or cut by successive halving); the reason is the
# run's error text. Final like completed: a re-run skips it, --rerun trains it again.
PRUNED = "pruned"
FINAL_STATUSES = (COMPLETED, DIVERGED, PRUNED)  # re-running a sweep skips these


@dataclass(frozen=True)
class RunStarted:
    run_id: str
    total_steps: int
    resumed_from: int  # steps already done, from a checkpoint (0 = fresh start)
    environment: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MetricRows:
    run_id: str
    rows: list[MetricRow]
    step: int  # updates done so far: everything up to here has been emitted


@dataclass(frozen=True)
class RunEnded:
    run_id: str
    status: str
    steps: int
    wall_time: float | None  # None: not known (an imported log that holds no times)
    summary: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    # the cause would stop every other run too (a full disk, a read-only folder): the driver
    # stores this event and then stops the sweep with ``error`` as its message
    fatal: bool = False


Event = RunStarted | MetricRows | RunEnded
