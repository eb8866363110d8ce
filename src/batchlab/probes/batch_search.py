"""The search behind max-batch, pure over a trial function: doubling, then binary search.

``search_batch_size`` finds the largest batch whose trial fits (assuming fitting is monotone
in the batch), then the largest within a memory threshold; ``predict_peak`` extrapolates a
peak from measured ones, so a trial that would clearly exceed the host is never run. Nothing
here trains or measures: ``probes.max_batch`` supplies the trials.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple


class Trial(NamedTuple):
    """One batch size tried: its measured peak (None after an OOM), whether it fits, and why."""

    batch_size: int
    peak_bytes: int | None
    fits: bool
    reason: str


class Search(NamedTuple):
    """What :func:`search_batch_size` found: the largest fitting batch (0 = none), the largest
    within the threshold (0 = none), and every trial in the order run."""

    largest: int
    recommended: int
    trials: list[Trial]


def search_batch_size(trial: Callable[[int], Trial], *, start: int, upper: int,
                      threshold: int | None) -> Search:
    """Doubling from ``start`` (capped at ``upper``), then binary search: the largest ``b`` with
    ``trial(b).fits``, assuming fitting is monotone in ``b``. Then, when ``threshold`` is set, a
    second binary search for the largest fitting ``b`` with ``peak_bytes <= threshold``.

    Pure over ``trial``: no batch is tried twice and none above ``upper``; errors raised by
    ``trial`` propagate unchanged.
    """
    tried: dict[int, Trial] = {}

    def run(b: int) -> Trial:
        if b not in tried:
            tried[b] = trial(b)
        return tried[b]

    lo, hi = 0, None  # largest known fit, smallest known failure
    b = min(start, upper)
    while True:
        if not run(b).fits:
            hi = b
            break
        lo = b
        if b >= upper:
            break
        b = min(2 * b, upper)
    if hi is not None:
        lo, _ = _bisect(run, lo, hi, lambda t: t.fits)

    recommended = lo
    if threshold is not None and lo > 0:
        def ok(t: Trial) -> bool:
            return t.fits and t.peak_bytes is not None and t.peak_bytes <= threshold

        below = max((t.batch_size for t in tried.values() if ok(t)), default=0)
        above = min((t.batch_size for t in tried.values() if t.batch_size > below and not ok(t)),
                    default=None)
        recommended = below if above is None else _bisect(run, below, above, ok)[0]
    return Search(lo, recommended, list(tried.values()))


def _bisect(run: Callable[[int], Trial], good: int, bad: int,
            ok: Callable[[Trial], bool]) -> tuple[int, int]:
    """Narrow ``good < bad`` (``ok`` at good or good == 0, not ok at bad) until adjacent."""
    while bad - good > 1:
        mid = (good + bad) // 2
        if ok(run(mid)):
            good = mid
        else:
            bad = mid
    return good, bad


def predict_peak(peaks: dict[int, int], batch_size: int) -> int | None:
    """The peak at ``batch_size`` on the line through the two largest measured batch sizes
    below it (``peaks``: batch size -> measured peak); None with fewer than two of them."""
    below = sorted(b for b in peaks if b < batch_size)[-2:]
    if len(below) < 2:
        return None
    (b1, p1), (b2, p2) = ((b, peaks[b]) for b in below)
    return round(p2 + (p2 - p1) / (b2 - b1) * (batch_size - b2))
