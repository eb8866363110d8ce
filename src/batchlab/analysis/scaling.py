"""Fits across batch sizes: a power law (best LR vs batch) and the critical batch size.

Critical batch size (McCandlish et al. 2018, "An Empirical Model of Large-Batch Training"):
the steps S and examples E = B * S needed to reach a target trade off as

    (S / S_min - 1) (E / E_min - 1) = 1,   equivalently   S(B) = S_min (1 + B_crit / B),

with B_crit = E_min / S_min. Below B_crit doubling the batch nearly halves the steps (perfect
scaling); above it, extra examples per step buy almost nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from batchlab.analysis.stats import line_fit, t975

#: The critical-batch search spans this factor below the smallest and above the largest batch
#: size tested. A best fit at either end means the data do not bound B_crit: steps either do not
#: fall with the batch at all, or fall like 1/B everywhere (perfect scaling beyond the range).
B_CRIT_SEARCH_FACTOR = 100.0
_GRID = 401  # coarse log-spaced candidates for B_crit; then a fine grid around the best
_REFINE = 201


#: The scaling rules a fitted exponent of best LR ∝ B^alpha is compared with: (name, alpha, words).
SCALING_RULES = (("linear", 1.0, "the linear rule (lr ∝ B)"),
                 ("square-root", 0.5, "the square-root rule (lr ∝ √B)"),
                 ("none", 0.0, "no scaling (the same LR at every batch)"))


@dataclass(frozen=True)
class PowerLawFit:
    """y = coefficient * x ** alpha, fitted by least squares in log-log; r2 in log space;
    ``alpha_stderr`` the standard error of alpha (NaN with 2 points: the line fits exactly)."""

    alpha: float
    coefficient: float
    r2: float
    n: int
    alpha_stderr: float = math.nan


@dataclass(frozen=True)
class ExponentVerdict:
    """What a fitted exponent can tell about the scaling rules (see :func:`judge_exponent`).

    half_width: of the interval alpha ± half_width (NaN when nothing bounds it); the larger of
    ``fit_halfwidth`` (95% Student-t from the fit's scatter; NaN with 2 points) and
    ``grid_halfwidth`` (a best LR moves in whole grid steps of ``grid_ratio``, so alpha is only
    known to log(grid_ratio) / log(batch_ratio); None without a grid). ``consistent``: the names
    of the :data:`SCALING_RULES` inside the interval; ``rule``: the one rule named, only when it
    is the single one inside (the interval excludes the others), else None.
    """

    alpha: float
    half_width: float
    fit_halfwidth: float
    grid_halfwidth: float | None
    grid_ratio: float | None
    batch_ratio: float
    consistent: tuple[str, ...]
    rule: str | None
    n: int


def lr_grid_ratio(batch_sizes: Sequence[float], lrs: Sequence[float]) -> float | None:
    """The coarsest step of the LR grid: the largest ratio between neighbouring distinct LRs
    tried at one batch size (None when no batch size has 2 LRs)."""
    xa, ya = _positive_pairs(batch_sizes, lrs)
    ratios = [float(np.max(u[1:] / u[:-1])) for b in np.unique(xa) if (u := np.unique(ya[xa == b])).size >= 2]
    return max(ratios) if ratios else None


def judge_exponent(fit: PowerLawFit, grid_ratio: float | None, batch_ratio: float) -> ExponentVerdict:
    """Which scaling rules the fitted exponent's interval holds (see :class:`ExponentVerdict`).

    ``batch_ratio`` is largest / smallest batch size fitted. A rule is named only when every
    other rule lies outside alpha ± half_width; an unknown half-width (2 points, no grid)
    holds every rule.
    """
    fit_hw = t975(fit.n - 2) * fit.alpha_stderr if fit.n >= 3 else math.nan
    grid_hw = (math.log(grid_ratio) / math.log(batch_ratio)
               if grid_ratio is not None and grid_ratio > 1 and batch_ratio > 1 else None)
    known = [x for x in (fit_hw, grid_hw) if x is not None and math.isfinite(x)]
    half = max(known) if known else math.nan
    inside = tuple(name for name, a, _ in SCALING_RULES
                   if not math.isfinite(half) or abs(fit.alpha - a) <= half)
    return ExponentVerdict(fit.alpha, half, fit_hw, grid_hw, grid_ratio, batch_ratio, inside,
                           inside[0] if len(inside) == 1 else None, fit.n)


@dataclass(frozen=True)
class CriticalBatchFit:
    """S(B) = s_min (1 + b_crit / B); e_min = s_min * b_crit.

    ``rmse`` is the root-mean-square residual of log S (so 0.03 is about a 3% typical error);
    ``n`` the number of (batch size, steps) points fitted.
    """

    s_min: float
    e_min: float
    b_crit: float
    rmse: float
    n: int


def _positive_pairs(x: Sequence[float], y: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """The (x, y) pairs where both are finite and > 0 (the only ones a log can take)."""
    xa, ya = np.asarray(list(x), dtype=float), np.asarray(list(y), dtype=float)
    if xa.shape != ya.shape:
        raise ValueError(f"x and y differ in length ({xa.size} vs {ya.size})")
    keep = np.isfinite(xa) & np.isfinite(ya) & (xa > 0) & (ya > 0)
    return xa[keep], ya[keep]


def fit_power_law(x: Sequence[float], y: Sequence[float]) -> PowerLawFit | None:
    """Fit y = c * x^alpha by linear least squares on (log x, log y).

    Points with a non-finite or non-positive coordinate are dropped. Returns None when fewer
    than 2 points remain or all x are equal (alpha is then undefined). ``r2`` is 1 when y is
    fitted exactly (including a constant y, whose variance is zero).
    """
    xa, ya = _positive_pairs(x, y)
    if xa.size < 2 or np.unique(xa).size < 2:
        return None
    lx, ly = np.log(xa), np.log(ya)
    line = line_fit(lx, ly)
    if line is None:
        return None
    ss_res = float(np.sum((ly - (line.slope * lx + line.intercept)) ** 2))
    ss_tot = float(np.sum((ly - ly.mean()) ** 2))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0
    return PowerLawFit(line.slope, float(np.exp(line.intercept)), r2, int(xa.size), line.slope_se)


def _profile_sse(b_crit: np.ndarray, batch: np.ndarray, log_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each candidate B_crit: the best log S_min and the sum of squared log residuals.

    With B_crit fixed, log S = log S_min + log(1 + B_crit / B) is linear in log S_min alone, so
    its least-squares value is a mean: the 2-parameter fit becomes a 1-D search over B_crit.
    """
    shape = log_s[None, :] - np.log1p(b_crit[:, None] / batch[None, :])
    log_s_min = shape.mean(axis=1)
    sse = ((shape - log_s_min[:, None]) ** 2).sum(axis=1)
    return log_s_min, sse


def fit_critical_batch_or_reason(
    batch_sizes: Sequence[float], steps: Sequence[float]
) -> CriticalBatchFit | str:
    """Fit S(B) = S_min (1 + B_crit / B) to steps-to-target per batch size, or say why not.

    Residuals are taken in log S (relative errors, as steps span orders of magnitude). The
    search profiles out S_min (see ``_profile_sse``) and scans log B_crit on a grid spanning
    :data:`B_CRIT_SEARCH_FACTOR` beyond the tested batch sizes, then refines around the best
    point; a grid search needs no starting guess and cannot diverge. Returns a sentence (str)
    instead of a fit when fewer than 3 distinct batch sizes have positive finite steps, or when
    the best B_crit sits at an end of the search range (the data do not bound it).
    """
    batch, s = _positive_pairs(batch_sizes, steps)
    distinct = np.unique(batch).size
    if distinct < 3:
        return (f"a critical batch size needs steps-to-target at 3 or more batch sizes; "
                f"{distinct} {'has' if distinct == 1 else 'have'} them")
    log_s = np.log(s)
    lo, hi = np.log(batch.min() / B_CRIT_SEARCH_FACTOR), np.log(batch.max() * B_CRIT_SEARCH_FACTOR)
    grid = np.exp(np.linspace(lo, hi, _GRID))
    _, sse = _profile_sse(grid, batch, log_s)
    k = int(np.argmin(sse))
    if k == 0:
        return ("steps to target do not fall as the batch grows (from "
                f"{s[np.argmin(batch)]:.0f} at batch {batch.min():g} to {s[np.argmax(batch)]:.0f} "
                f"at batch {batch.max():g}): the critical batch is below the smallest one tested")
    if k == _GRID - 1:
        return ("steps to target fall like 1/B across every batch size tested (perfect scaling): "
                f"the critical batch is beyond the largest one tested ({batch.max():g}); "
                "try larger batches")
    fine = np.exp(np.linspace(np.log(grid[k - 1]), np.log(grid[k + 1]), _REFINE))
    log_s_min, sse = _profile_sse(fine, batch, log_s)
    m = int(np.argmin(sse))
    s_min, b_crit = float(np.exp(log_s_min[m])), float(fine[m])
    return CriticalBatchFit(s_min, s_min * b_crit, b_crit, float(np.sqrt(sse[m] / s.size)), int(s.size))


def fit_critical_batch(batch_sizes: Sequence[float], steps: Sequence[float]) -> CriticalBatchFit | None:
    """:func:`fit_critical_batch_or_reason`, with None in place of the reason."""
    fit = fit_critical_batch_or_reason(batch_sizes, steps)
    return fit if isinstance(fit, CriticalBatchFit) else None


def alpha_line(alpha: float) -> str:
    """The fitted exponent of lr* ~ B^alpha in words that match its sign: a negative alpha is
    an LR that falls as the batch grows, never one that "grows as B^-0.55"."""
    exponent = f"{alpha:.2f}"
    trend = ("does not change with the batch" if float(exponent) == 0 else
             "grows with the batch" if alpha > 0 else "falls as the batch grows")
    return (f"best LR scales as B^{exponent.replace('-0.00', '0.00')} ({trend}; linear rule: 1, "
            "square-root rule: 0.5)")
