"""The trend of a curve over its final window, and how it compares with the curve's own noise.

"Still falling" and "within noise of the best" both need to know how much a curve wobbles by
itself: a straight line fitted to the final window gives the trend (its slope) and the noise
(the scatter of the points about the line), so neither is judged from two end points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from batchlab.analysis import series as S
from batchlab.analysis.stats import line_fit, t975
from batchlab.store import Series

#: The fewest points a line can be fitted to with a noise estimate left over (1 degree of freedom).
MIN_TAIL_POINTS = 3


@dataclass(frozen=True)
class TailTrend:
    """A line fitted to the final window of a curve.

    start, end: the fitted values at the window's first and last step; fall = start - end
    (negative when rising). fall_halfwidth: the 95% Student-t half-width of ``fall`` (0 when
    the points lie exactly on the line). scatter: the residual std of the points about the line.
    fraction: the window's share of the curve's step span. n: points in the window.
    """

    start: float
    end: float
    fall: float
    fall_halfwidth: float
    scatter: float
    fraction: float
    n: int


def tail_trend(series: Series, window: float) -> TailTrend | None:
    """The trend over the last ``window`` of ``series`` (at least its last
    :data:`MIN_TAIL_POINTS` finite points); None with fewer points or no step span."""
    f = S.finite(series)
    if len(f.value) < MIN_TAIL_POINTS or f.step[-1] <= f.step[0]:
        return None
    t = S.tail(f, window, MIN_TAIL_POINTS)
    fit = line_fit(t.step.astype(float), t.value)
    if fit is None:
        return None
    first, last = float(t.step[0]), float(t.step[-1])
    start, end = fit.at(first), fit.at(last)
    halfwidth = t975(fit.n - 2) * fit.slope_se * (last - first)
    return TailTrend(start, end, start - end, halfwidth if math.isfinite(halfwidth) else 0.0,
                     fit.resid_std if math.isfinite(fit.resid_std) else 0.0,
                     (last - first) / float(f.step[-1] - f.step[0]), fit.n)
