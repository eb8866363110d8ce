"""LR suggestions from an LR range test: small interchangeable pure functions over (lrs, losses).

Every strategy has the signature ``strategy(lrs, losses) -> Suggestion`` and never returns a
``None`` LR without a ``reason`` saying why and what to change. All strategies first clean the
curve the same way (``clean_curve``), which is what makes them robust by construction:

1. cut the curve at its first non-finite loss (after a NaN/inf the weights are garbage);
2. skip the first ``SKIP_START`` (10 %, as fastai's ``num_it // 10``) and the last ``SKIP_END``
   (5 %) of the points: the start is dominated by the EMA warming up and the end by divergence;
3. ``despike``: a point further than ``SPIKE_THRESHOLD`` (3) robust deviations from the running
   median of ``MEDIAN_WINDOW`` (5) points is replaced by linear interpolation between its
   good neighbours (a Hampel filter). Spikes of one or two points vanish; every other point,
   and so any smooth stretch of the curve, is left exactly as it was (a plain median filter
   would also flatten the points beside a spike into ties, which shortens valleys).

Strategies (``STRATEGIES``):

These rules on the curve alone are offered for comparison and as a fallback: ``lr_find``'s
default confirms candidates with short trial runs instead (``batchlab.probes.lr_trial``),
because no curve rule was safe across the cases of ``bench/judgement.py``.

- ``valley`` (the curve default): fastai's rule, with fastai's index arithmetic. Take the longest
  strictly decreasing subsequence of the loss, ending at ``end`` with ``length`` points; with
  ``start = end - length`` and ``span = end - start``, suggest ``start + int(span/3) +
  int(span/6)``, about half-way down. A subsequence may skip points, so an isolated spike
  cannot break a valley (and ``despike`` removes it first anyway). Why the default: measured
  with 3 seeds at batch 32 (SGD, momentum 0.9) on synthetic/MLP, digits/MLP (two widths) and
  digits/LeNet-5, valley suggested 0.004-0.015, always an LR that trains well, if up to ~7x
  below the best; minimum_div_10 suggested 0.03-0.11 (closer to the best, but 0.06 for
  LeNet-5, where 0.1 collapses training); steepest suggested 0.07-0.42 (0.42 for LeNet-5,
  which wrecks it). Valley's failure mode is slower training, never a wrecked run.
- ``steepest``: the most negative slope of the loss against **log10(lr)**
  (``np.gradient(loss, log10(lr))``): the slope on linear LR would favour the right end.
  A derivative amplifies noise, so it relies on ``despike``.
- ``minimum_div_10``: the LR at the minimum loss, divided by 10 (the "one order of magnitude
  below the blow-up" rule of thumb).

``summarize``, ``disagreement`` and ``fit_power_law`` aggregate suggestions over repeats,
strategies and batch sizes (used by ``lr_search.lr_find``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

SKIP_START = 0.1  # fraction of the points skipped at the start of the curve
SKIP_END = 0.05  # fraction skipped at the end (at least one point when any are skipped)
MEDIAN_WINDOW = 5  # odd; removes spikes of up to (MEDIAN_WINDOW - 1) // 2 consecutive points
SPIKE_THRESHOLD = 3.0  # robust standard deviations from the running median that make a spike
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


def running_median(values: np.ndarray, window: int) -> np.ndarray:
    """Median over ``window`` points (odd) centred on each point, edges padded with the edge value."""
    half = window // 2
    padded = np.pad(values, half, mode="edge")
    return np.median(np.lib.stride_tricks.sliding_window_view(padded, window), axis=1)


def despike(
    values: np.ndarray, window: int = MEDIAN_WINDOW, threshold: float = SPIKE_THRESHOLD
) -> np.ndarray:
    """Replace spikes by linear interpolation between the nearest kept points; all other
    points are returned unchanged.

    A spike is further from the running median than ``threshold`` x the local scale: the
    larger of the robust spread (1.4826 x the running MAD) and the curve's local step (the
    running median of |differences| over ``2 * window + 1`` points). The step term keeps
    the bottom of a smooth, noise-free curve (one step off its running median) from being
    taken for a spike.
    """
    if window <= 1 or len(values) < 2 * window + 1:
        return values.copy()
    residual = values - running_median(values, window)
    spread = 1.4826 * running_median(np.abs(residual), window)
    step = running_median(np.abs(np.diff(values, append=values[-1])), 2 * window + 1)
    spike = np.abs(residual) > threshold * np.maximum(spread, step)
    if not spike.any() or spike.all():
        return values.copy()
    idx = np.arange(len(values))
    out = values.copy()
    out[spike] = np.interp(idx[spike], idx[~spike], values[~spike])
    return out


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
            "Lower start_lr, or raise range_steps (--start-lr, --range-steps in the CLI).")
    return lr, despike(loss, window), ""


def _no_descent(lr: np.ndarray, loss: np.ndarray) -> str:
    """A reason when the loss never decreases meaningfully over the curve, else ""."""
    # the largest fall relative to the level it fell from (a blow-up later does not matter)
    peak = np.maximum.accumulate(loss)
    if float(np.max((peak - loss) / np.maximum(np.abs(peak), 1e-12))) > MIN_DROP:
        return ""
    span = f"between lr {lr[0]:.3g} and {lr[-1]:.3g}"
    if loss[-1] - loss[0] > MIN_DROP * max(abs(float(loss[0])), 1e-12):
        return (f"the loss never decreased (it rose from {loss[0]:.4g} to {loss[-1]:.4g} {span}): "
                "the range starts too high; lower start_lr (--start-lr in the CLI).")
    return (f"the loss stayed flat (within {MIN_DROP:.0%}) {span}: these LRs are too small to "
            "train, or the model cannot learn this data; raise end_lr or range_steps (--end-lr, "
            "--range-steps in the CLI).")


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
    end = int(np.argmax(lds))  # the first longest, as fastai's strict comparison keeps
    # fastai's start counts the subsequence's points back from its end, not its first point:
    # a subsequence threading sparse points through a noisy flat start would otherwise
    # stretch the valley far left and drag the suggestion into LRs that barely train.
    start = max(0, end - int(lds[end]))
    sections = (end - start) / 3
    idx = start + int(sections) + int(sections / 2)
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


def loss_minimum(lrs: Sequence[float], losses: Sequence[float], **clean: float) -> Suggestion:
    """The LR at the minimum of the cleaned loss: the edge of what trains (the ``trial``
    strategy's anchor, see ``batchlab.probes.lr_trial``)."""
    s = _apply("loss_minimum", _minimum_index, lrs, losses, **clean)
    return s if s.lr is None else Suggestion(s.lr, s.strategy, f"the loss is lowest at lr {s.lr:.3g}")


def minimum_div_10(lrs: Sequence[float], losses: Sequence[float], **clean: float) -> Suggestion:
    """A tenth of the LR at the minimum loss."""
    s = loss_minimum(lrs, losses, **clean)
    if s.lr is None:
        return Suggestion(None, "minimum_div_10", s.reason)
    return Suggestion(s.lr / 10, s.strategy, f"the loss is lowest at lr {s.lr:.3g}; a tenth of it")


STRATEGIES: dict[str, Callable[[Sequence[float], Sequence[float]], Suggestion]] = {
    "valley": valley,
    "steepest": steepest,
    "minimum_div_10": minimum_div_10,
}
#: the curve rule ``suggest`` uses by default, and ``lr_find``'s fallback when trials cannot
#: start; ``lr_find``'s own default is the ``trial`` strategy (``batchlab.probes.lr_trial``)
DEFAULT_CURVE_STRATEGY = "valley"


def suggest(lrs: Sequence[float], losses: Sequence[float],
            strategy: str = DEFAULT_CURVE_STRATEGY) -> Suggestion:
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
    v = sorted(float(x) for x in values if x is not None)
    if not v:
        return None, None, None
    mid = len(v) // 2
    a, b = (v[mid], v[mid]) if len(v) % 2 else (v[mid - 1], v[mid])
    median = a if a == b else min(max(math.sqrt(a * b), a), b)  # exact for equal values
    return median, v[0], v[-1]


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
