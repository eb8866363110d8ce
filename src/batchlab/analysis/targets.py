"""Time to target: when a run first reaches a given validation accuracy.

Comparing runs at equal *steps* is unfair when batch sizes differ (a step of batch 1024 sees 64x
the data of a step of batch 16), so a hit reports every clock at once: steps, epochs, examples
seen and wall time. Evaluations are sparse (typically once per epoch), so the crossing is
linearly interpolated between the two evaluations around it rather than rounded up to the
later one, which would overstate the time of runs with few evaluations.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from batchlab.analysis.series import finite
from batchlab.store import Series

#: The default target is this fraction of the best validation accuracy any run reached: close
#: enough to the best to be a useful bar, loose enough that several configurations reach it.
DEFAULT_TARGET_FRACTION = 0.95


@dataclass(frozen=True)
class TargetHit:
    """The first crossing of ``target``, on every clock (interpolated, see the module doc)."""

    target: float
    step: float
    epoch: float
    examples: float
    wall_time: float


def first_hit(series: Series, target: float, higher_is_better: bool = True) -> TargetHit | None:
    """The first point where ``series`` reaches ``target`` (>= it, or <= it when lower is better).

    Non-finite values are skipped. When the very first finite evaluation already meets the
    target, the hit is that evaluation; otherwise every column is interpolated linearly in the
    value between the last evaluation short of the target and the first one that meets it.
    Returns None when the target is never reached, the series is empty or ``target`` is NaN.
    """
    if not math.isfinite(target):
        return None
    f = finite(series)
    value = f.value
    met = value >= target if higher_is_better else value <= target
    hits = np.flatnonzero(met)
    if not hits.size:
        return None
    i = int(hits[0])
    if i == 0:
        frac, j = 0.0, 0
    else:
        j = i - 1
        # value[j] is short of the target and value[i] meets it, so the gap is non-zero
        frac = (target - value[j]) / (value[i] - value[j])

    def at(column: np.ndarray) -> float:
        return float(column[j] + frac * (column[i] - column[j]))

    return TargetHit(float(target), at(f.step), at(f.epoch), at(f.examples), at(f.wall_time))


# a to-target clock (a summary's ``unknown_clocks``) -> its TargetHit field
HIT_FIELDS = {"steps": "step", "epochs": "epoch", "examples": "examples", "wall_time": "wall_time"}


def known_clocks(hit: TargetHit | None, summary: dict[str, Any]) -> TargetHit | None:
    """``hit`` with NaN on the clocks the run's summary lists under ``unknown_clocks`` (an
    imported log without times, or without a batch or training-set size, stores stand-ins
    such as 0 s there), so no time to target is claimed on them."""
    unknown = summary.get("unknown_clocks") or ()
    fields = {HIT_FIELDS[c]: math.nan for c in unknown if c in HIT_FIELDS}
    return replace(hit, **fields) if hit is not None and fields else hit


def default_target(best_values: Sequence[float], fraction: float = DEFAULT_TARGET_FRACTION) -> float:
    """``fraction`` of the largest finite value in ``best_values`` (runs' best val accuracy).

    Returns NaN when no value is finite (no run has evaluated yet); callers treat that as
    "no target".
    """
    values = np.asarray(list(best_values), dtype=float)
    values = values[np.isfinite(values)]
    return float(fraction * values.max()) if values.size else float("nan")


def default_loss_target(lowest_losses: Sequence[float],
                        fraction: float = DEFAULT_TARGET_FRACTION) -> float:
    """The loss counterpart of :func:`default_target`, for runs that record no accuracy (a
    regression): the lowest finite value in ``lowest_losses`` (runs' lowest val loss) divided
    by ``fraction``, i.e. about 5% above the best loss. NaN when no value is finite."""
    values = np.asarray(list(lowest_losses), dtype=float)
    values = values[np.isfinite(values)]
    return float(values.min() / fraction) if values.size else float("nan")
