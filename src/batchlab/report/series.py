"""Array helpers for plot data: smoothing, seed alignment and downsampling (pure numpy).

Smoothing runs on the full per-step series; only the result is thinned for drawing, so a
10,000-step run is smoothed exactly and drawn with at most ``MAX_POINTS`` points per line.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

MAX_POINTS = 2000
VIEWS = ("epoch", "step", "examples", "wall_time")


SMOOTH_FRACTION = 0.025


def smoothing_window(n: int) -> int:
    """Steps in the running mean: 2.5% of the run (at least 1), so runs of any length (any
    batch size) are smoothed alike; minibatch noise on a log axis needs that much."""
    return max(1, round(n * SMOOTH_FRACTION))


def running_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over the last ``window`` finite values (fewer at the start).

    Non-finite values (a diverged step) are skipped and come back as NaN, so one inf loss does
    not poison the rest of the line.
    """
    out = np.full(values.shape, np.nan)
    finite = np.isfinite(values)
    v = values[finite]
    if v.size == 0:
        return out
    c = np.concatenate(([0.0], np.cumsum(v)))
    idx = np.arange(1, v.size + 1)
    lo = np.maximum(idx - window, 0)
    out[finite] = (c[idx] - c[lo]) / (idx - lo)
    return out


def _nan_stats(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Column mean and std over the rows (seeds) that have a finite value; std None for 1 row."""
    m = np.where(np.isfinite(matrix), matrix, np.nan)
    with warnings.catch_warnings():  # an all-NaN column is expected (every seed diverged)
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(m, axis=0)
        std = np.nanstd(m, axis=0) if m.shape[0] > 1 else None
    return mean, std


def align(steps: Sequence[np.ndarray], columns: Sequence[dict[str, np.ndarray]]
          ) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray | None]]:
    """Align several seeds' rows on the union of their steps.

    ``steps[i]`` are run i's steps (sorted); ``columns[i]`` maps a name to run i's values at
    those steps. Returns (union steps, column means, column stds). Seeds that stopped early
    (diverged) simply do not contribute past their end.
    """
    if len(steps) == 1:
        only = columns[0]
        clean = {k: np.where(np.isfinite(v), v, np.nan) for k, v in only.items()}
        return steps[0], clean, dict.fromkeys(only)
    union = np.unique(np.concatenate(steps))
    means: dict[str, np.ndarray] = {}
    stds: dict[str, np.ndarray | None] = {}
    positions = [np.searchsorted(union, s) for s in steps]
    for name in columns[0]:
        matrix = np.full((len(steps), union.size), np.nan)
        for row, (pos, cols) in enumerate(zip(positions, columns, strict=True)):
            matrix[row, pos] = cols[name]
        means[name], stds[name] = _nan_stats(matrix)
    return union, means, stds


def stride_index(n: int, max_points: int = MAX_POINTS) -> np.ndarray:
    """Evenly spaced indices (first and last kept): for lines that are already smooth."""
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_points).round().astype(np.int64))


def envelope_index(values: np.ndarray, max_points: int = MAX_POINTS) -> np.ndarray:
    """Indices of the min and max of each of ``max_points // 2`` buckets (first/last kept).

    For noisy raw lines: plain striding would alias the noise and hide spikes, the min/max
    envelope draws the same band the full line would.
    """
    n = values.size
    if n <= max_points:
        return np.arange(n)
    buckets = max(1, max_points // 2 - 1)
    size = -(-n // buckets)
    padded = np.full(buckets * size, np.nan)
    padded[:n] = values
    grid = padded.reshape(buckets, size)
    finite = np.isfinite(grid)
    lo = np.where(finite, grid, np.inf).argmin(axis=1)
    hi = np.where(finite, grid, -np.inf).argmax(axis=1)
    base = np.arange(buckets) * size
    idx = np.concatenate(([0, n - 1], base + lo, base + hi))
    return np.unique(idx[idx < n])
