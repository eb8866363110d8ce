"""Small, total helpers over stored metric series (``batchlab.store.Series``).

Every analysis reads series that may be missing, empty, short or full of NaN (a diverged run, a
pending run, a NULL read back from SQLite). These helpers turn all of those into "no points"
instead of exceptions, so the analyses above them never need a special case.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from batchlab.store import Series

#: A series with no points: what a missing metric reads as.
EMPTY = Series(np.zeros(0, np.int64), np.zeros(0), np.zeros(0), np.zeros(0, np.int64), np.zeros(0))


def get(metrics: Mapping[str, Series], name: str) -> Series:
    """The named series, or :data:`EMPTY` when the run did not record it."""
    series = metrics.get(name)
    return series if series is not None else EMPTY


def finite(series: Series) -> Series:
    """Only the points whose value is finite (NaN and +-inf dropped), in step order."""
    value = np.asarray(series.value, dtype=float)
    keep = np.isfinite(value)
    if keep.all():
        return series
    return Series(np.asarray(series.step)[keep], value[keep], np.asarray(series.epoch)[keep],
                  np.asarray(series.examples)[keep], np.asarray(series.wall_time)[keep])


def first_nonfinite(series: Series) -> int | None:
    """Index of the first NaN/inf value, or None when every value is finite."""
    bad = np.flatnonzero(~np.isfinite(np.asarray(series.value, dtype=float)))
    return int(bad[0]) if bad.size else None


def head(series: Series, stop: int) -> Series:
    """The first ``stop`` points (the part of a run before it diverged)."""
    return Series(series.step[:stop], series.value[:stop], series.epoch[:stop],
                  series.examples[:stop], series.wall_time[:stop])


def after(series: Series, step: float) -> Series:
    """The points after ``step`` (``after(s, 0)``: without the untrained model's evaluation)."""
    keep = np.asarray(series.step) > step
    if keep.all():
        return series
    return Series(np.asarray(series.step)[keep], np.asarray(series.value)[keep],
                  np.asarray(series.epoch)[keep], np.asarray(series.examples)[keep],
                  np.asarray(series.wall_time)[keep])


def last(series: Series) -> float:
    """The last finite value, NaN when there is none."""
    f = finite(series)
    return float(f.value[-1]) if len(f.value) else float("nan")


def best(series: Series) -> float:
    """The largest finite value, NaN when there is none."""
    f = finite(series)
    return float(f.value.max()) if len(f.value) else float("nan")


def value_at(series: Series, step: float) -> float:
    """The finite value linearly interpolated at ``step`` (clamped at the ends; NaN if empty)."""
    f = finite(series)
    if not len(f.value):
        return float("nan")
    return float(np.interp(step, f.step, f.value))


def epoch_at(series: Series, step: float) -> float | None:
    """The epoch at ``step``, interpolated from the series' own (step, epoch) columns."""
    if not len(series.step):
        return None
    return float(np.interp(step, series.step, series.epoch))


def tail(series: Series, fraction: float, min_points: int = 3) -> Series:
    """The finite points of the last ``fraction`` of the series' step span, and at least its
    last ``min_points`` (all of them when it has fewer)."""
    f = finite(series)
    if not len(f.value):
        return f
    start = f.step[-1] - fraction * (f.step[-1] - f.step[0])
    first = min(int(np.searchsorted(f.step, start, side="left")), max(len(f.value) - min_points, 0))
    return Series(f.step[first:], f.value[first:], f.epoch[first:], f.examples[first:],
                  f.wall_time[first:])
