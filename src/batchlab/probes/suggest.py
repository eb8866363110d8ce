"""LR suggestions from an LR range test: small interchangeable pure functions over (lrs, losses).

Every strategy has the signature ``strategy(lrs, losses) -> Suggestion`` and never returns a
``None`` LR without a ``reason`` saying why and what to change. All strategies first clean the
curve the same way (``clean_curve``), which is what makes them robust by construction:

1. cut the curve at its first non-finite loss (after a NaN/inf the weights are garbage);
2. skip the first ``SKIP_START`` (10 %, as fastai's ``num_it // 10``) and the last ``SKIP_END``
   (5 %) of the points: the start is dominated by the EMA warming up and the end by divergence;
3. median-filter the loss with a window of ``MEDIAN_WINDOW`` (5) points: a spike of one or two
   points is replaced by its neighbours, while a monotone stretch is left exactly as it is.

Strategies (``STRATEGIES``):

- ``valley`` (the default): fastai's rule. Take the longest strictly decreasing subsequence of
  the loss, and suggest the point about half-way along it (fastai's index arithmetic:
  ``start + int(len/3) + int(len/6)`` with ``start = end - length``). A subsequence may skip
  points, so even without the median filter an isolated spike cannot break a valley; with it,
  two lines of defence. It picks an LR that is still safely descending, away from both the
  flat start and the blow-up.
- ``steepest``: the most negative slope of the loss against **log10(lr)**
  (``np.gradient(loss, log10(lr))``): the slope on linear LR would favour the right end.
  A derivative amplifies noise, so it relies on the median filter.
- ``minimum_div_10``: the LR at the minimum loss, divided by 10 (the "one order of magnitude
  below the blow-up" rule of thumb).

``summarize``, ``disagreement`` and ``fit_power_law`` aggregate suggestions over repeats,
strategies and batch sizes (used by ``lr_range.lr_find``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

SKIP_START = 0.1  # fraction of the points skipped at the start of the curve
SKIP_END = 0.05  # fraction skipped at the end (at least one point when any are skipped)
MEDIAN_WINDOW = 5  # odd; removes spikes of up to (MEDIAN_WINDOW - 1) // 2 consecutive points
MIN_POINTS = 5  # fewer finite points than this after cleaning: no suggestion
MIN_DROP = 0.02  # a loss that never falls by 2 % of its magnitude "never decreased"
DISAGREE_FACTOR = 3.0  # strategies whose suggestions differ by more than this are flagged


@dataclass(frozen=True)
class Suggestion:
    """A suggested LR (None when there is none) and a sentence saying how or why not."""

    lr: float | None
    strategy: str
    reason: str


# --------------------------------------------------------------------------- cleaning


def median_filter(values: np.ndarray, window: int) -> np.ndarray:
    """Running median over ``window`` points (odd), edges padded with the edge value."""
    if window <= 1 or len(values) < window:
        return values.copy()
    half = window // 2
    padded = np.pad(values, half, mode="edge")
    return np.median(np.lib.stride_tricks.sliding_window_view(padded, window), axis=1)


def clean_curve(
    lrs: Sequence[float], losses: Sequence[float], *, skip_start: float = SKIP_START,
    skip_end: float = SKIP_END, window: int = MEDIAN_WINDOW,
) -> tuple[np.ndarray, np.ndarray, str]:
    """The part of the curve strategies look at: ``(lrs, losses, why_unusable)``.

    ``why_unusable`` is "" when the cleaned curve can be used, else a sentence for the user.
    ``lrs`` must be positive, finite and increasing (ValueError otherwise: a caller bug).
    """
    lr = np.asarray(lrs, dtype=float)
    loss = np.asarray(losses, dtype=float)
    if lr.shape != loss.shape or lr.ndim != 1:
        raise ValueError(f"lrs and losses must be 1-D of equal length, got {lr.shape} and {loss.shape}")
    if len(lr) and (not np.all(np.isfinite(lr)) or lr.min() <= 0 or np.any(np.diff(lr) <= 0)):
        raise ValueError("lrs must be positive, finite and increasing")
    bad = np.flatnonzero(~np.isfinite(loss))
    n = len(loss)
    first = math.floor(skip_start * n)
    last = n - (max(1, math.floor(skip_end * n)) if skip_end > 0 and n else 0)
    if len(bad):
        last = min(last, int(bad[0]))
    lr, loss = lr[first:last], loss[first:last]
    if len(loss) < MIN_POINTS:
        where = f"the first non-finite loss is point {int(bad[0]) + 1} of {n}" if len(bad) else (
            f"only {n} points were recorded")
        return lr, loss, (
            f"too few usable points ({len(loss)} after skipping the first {skip_start:.0%} and "
            f"last {skip_end:.0%}; {where}): the range diverged almost at once or is too short. "
            "Lower start_lr, or raise steps.")
    return lr, median_filter(loss, window), ""


def _no_descent(lr: np.ndarray, loss: np.ndarray) -> str:
    """A reason when the loss never decreases meaningfully over the curve, else ""."""
    scale = max(float(np.max(np.abs(loss))), 1e-12)
    drawdown = float(np.max(np.maximum.accumulate(loss) - loss))
    if drawdown > MIN_DROP * scale:
        return ""
    span = f"between lr {lr[0]:.3g} and {lr[-1]:.3g}"
    if loss[-1] - loss[0] > MIN_DROP * scale:
        return (f"the loss never decreased (it rose from {loss[0]:.4g} to {loss[-1]:.4g} {span}): "
                "the range starts too high; lower start_lr.")
    return (f"the loss stayed flat (within {MIN_DROP:.0%}) {span}: these LRs are too small to "
            "train, or the model cannot learn this data; raise end_lr or steps.")


# --------------------------------------------------------------------------- strategies

IndexRule = Callable[[np.ndarray, np.ndarray], tuple[int, str]]


def _apply(name: str, rule: IndexRule, lrs: Sequence[float], losses: Sequence[float],
           **clean: float) -> Suggestion:
    """Clean the curve, check it descends, then let ``rule`` pick an index (and explain)."""
    lr, loss, why = clean_curve(lrs, losses, **clean)
    why = why or _no_descent(lr, loss)
    if why:
        return Suggestion(None, name, why)
    idx, reason = rule(lr, loss)
    return Suggestion(float(lr[idx]), name, reason)


def _steepest_index(lr: np.ndarray, loss: np.ndarray) -> tuple[int, str]:
    slope = np.gradient(loss, np.log10(lr))
    i = int(np.argmin(slope))
    return i, f"steepest descent of the loss against log10(lr): slope {slope[i]:.3g} per decade"


def _valley_index(lr: np.ndarray, loss: np.ndarray) -> tuple[int, str]:
    n = len(loss)
    # lds[i]: length of the longest strictly decreasing subsequence ending at point i
    lds = np.ones(n, dtype=int)
    for i in range(1, n):
        higher = loss[:i] > loss[i]
        if higher.any():
            lds[i] = lds[:i][higher].max() + 1
    end = int(np.argmax(lds))  # first longest, as fastai's strict comparison keeps
    start = max(0, end - int(lds[end]))
    sections = (end - start) / 3
    idx = min(n - 1, start + int(sections) + int(sections / 2))
    return idx, (f"about half-way along the longest descending stretch of the loss "
                 f"(lr {lr[start]:.3g} to {lr[end]:.3g}, {int(lds[end])} points)")


def _minimum_index(lr: np.ndarray, loss: np.ndarray) -> tuple[int, str]:
    return int(np.argmin(loss)), ""


def steepest(lrs: Sequence[float], losses: Sequence[float], **clean: float) -> Suggestion:
    """The LR where the loss falls fastest per decade of LR."""
    return _apply("steepest", _steepest_index, lrs, losses, **clean)


def valley(lrs: Sequence[float], losses: Sequence[float], **clean: float) -> Suggestion:
    """fastai's valley: half-way along the longest decreasing run of the loss."""
    return _apply("valley", _valley_index, lrs, losses, **clean)


def minimum_div_10(lrs: Sequence[float], losses: Sequence[float], **clean: float) -> Suggestion:
    """A tenth of the LR at the minimum loss."""
    s = _apply("minimum_div_10", _minimum_index, lrs, losses, **clean)
    if s.lr is None:
        return s
    return Suggestion(s.lr / 10, s.strategy, f"the loss is lowest at lr {s.lr:.3g}; a tenth of it")


STRATEGIES: dict[str, Callable[[Sequence[float], Sequence[float]], Suggestion]] = {
    "valley": valley,
    "steepest": steepest,
    "minimum_div_10": minimum_div_10,
}
DEFAULT_STRATEGY = "valley"


def suggest(lrs: Sequence[float], losses: Sequence[float], strategy: str = DEFAULT_STRATEGY) -> Suggestion:
    """Apply the named strategy (ValueError naming the choices for an unknown one)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown LR suggestion strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
    return STRATEGIES[strategy](lrs, losses)


def suggest_all(lrs: Sequence[float], losses: Sequence[float]) -> dict[str, Suggestion]:
    """Every strategy's suggestion, by name."""
    return {name: fn(lrs, losses) for name, fn in STRATEGIES.items()}


# --------------------------------------------------------------------------- aggregation


def summarize(values: Sequence[float | None]) -> tuple[float | None, float | None, float | None]:
    """``(median, min, max)`` of the LRs that exist; the median is taken in log space
    (equal to the plain median for an odd count, the geometric mean of the middle pair
    for an even one: LRs live on a log scale). All None when no value exists."""
    v = np.array([x for x in values if x is not None], dtype=float)
    if not len(v):
        return None, None, None
    return float(np.exp(np.median(np.log(v)))), float(v.min()), float(v.max())


def disagreement(by_strategy: dict[str, float | None], factor: float = DISAGREE_FACTOR) -> dict[str, float]:
    """The strategies' LRs when the largest is more than ``factor`` x the smallest, else {}."""
    given = {k: v for k, v in by_strategy.items() if v is not None}
    if len(given) < 2 or max(given.values()) <= factor * min(given.values()):
        return {}
    return dict(sorted(given.items(), key=lambda kv: kv[1]))


def fit_power_law(batch_sizes: Sequence[int], lrs: Sequence[float]) -> tuple[float, float]:
    """Least-squares fit of ``lr = c * B**alpha`` in log-log space: returns ``(alpha, c)``.

    Needs at least two distinct batch sizes (ValueError otherwise).
    """
    b = np.log(np.asarray(batch_sizes, dtype=float))
    y = np.log(np.asarray(lrs, dtype=float))
    if len(np.unique(b)) < 2:
        raise ValueError("fitting lr ~ B**alpha needs at least two distinct batch sizes")
    alpha, log_c = np.polyfit(b, y, 1)
    return float(alpha), float(math.exp(log_c))
