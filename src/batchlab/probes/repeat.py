"""When to stop repeating timed windows: once every ratio is known to within ``max_spread``.

A timing probe that compares variants (``throughput --options``) times them in *rounds*: one
window of each variant, back to back, so that load on a shared machine slows the windows of
one round alike. Each round gives one ratio per variant (its samples/s over the reference's
in the same round); the reported ratio is their median. Its **spread** is the width of the
median's 95 % confidence interval relative to the median, from order statistics (no
assumption about the noise's distribution, and an outlying window — the probe descheduled for
a moment — moves it by one rank, not by its size): two measurements of the same ratio then
differ by less than the spread, as a rule. With few rounds the interval is the range (min to
max), so a spread of 5 % after 5 rounds means all five ratios lay within 5 %.

``decide`` is the rule, a pure function of the windows measured so far: after at least
``min_rounds`` rounds, stop when every ratio's spread is at most ``max_spread``, or give up
once ``max_rounds`` rounds or ``max_seconds`` of measuring are spent, saying that the spread
was not reached.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import median

MAX_SPREAD = 0.05
MIN_ROUNDS = 5
MAX_ROUNDS = 100
MAX_SECONDS = 20.0
LEVEL = 0.95

Window = tuple[int, float]  # (steps, seconds) of one timed window


def median_interval(values: Sequence[float], level: float = LEVEL) -> tuple[float, float]:
    """A distribution-free confidence interval of the median: the k-th smallest and k-th largest
    of ``values``, with the largest k whose coverage (binomial, p = 1/2) is at least ``level``;
    the range (k = 1) where even that covers less (5 values or fewer at 95 %)."""
    if not values:
        raise ValueError("no values")
    ordered, n = sorted(values), len(values)
    k, below = 1, 0.0  # below: P(Binomial(n, 1/2) <= k - 1), the mass left out on each side
    for j in range(1, n // 2 + 1):
        below += math.comb(n, j - 1) / 2**n
        if 2 * below > 1 - level:
            break
        k = j
    return ordered[k - 1], ordered[n - k]


def ratio_spread(ratios: Sequence[float]) -> float:
    """The width of the median's confidence interval over the median (module doc); inf for
    fewer than two ratios (one round shows no spread at all) or a median that is not > 0."""
    if len(ratios) < 2:
        return math.inf
    mid = median(ratios)
    if not mid > 0:
        return math.inf
    low, high = median_interval(ratios)
    return (high - low) / mid


def round_ratios(windows: Mapping[str, Sequence[Window]], base: str) -> dict[str, list[float]]:
    """Per round, each variant's samples/s over ``base``'s: (steps / seconds) over (steps /
    seconds) of the same round (the batch size cancels). ``base`` maps to itself (all 1.0)."""
    ref = [n / max(dt, 1e-12) for n, dt in windows[base]]
    return {label: [(n / max(dt, 1e-12)) / r for (n, dt), r in zip(runs, ref, strict=False)]
            for label, runs in windows.items()}


@dataclass(frozen=True)
class Decision:
    """``stop``: measure no more rounds. ``reached``: every spread is at most the limit.
    ``ratios``/``spreads``: the median ratio and its spread per variant (``base`` excluded)."""

    stop: bool
    reached: bool
    rounds: int
    ratios: dict[str, float]
    spreads: dict[str, float]


def decide(windows: Mapping[str, Sequence[Window]], base: str, elapsed: float, *,
           max_spread: float = MAX_SPREAD, min_rounds: int = MIN_ROUNDS,
           max_rounds: int = MAX_ROUNDS, max_seconds: float = MAX_SECONDS) -> Decision:
    """Whether to stop after the rounds in ``windows`` (label -> its windows, one per round;
    ``base`` the reference) took ``elapsed`` seconds: see the module doc. With no variant
    besides ``base`` there is nothing to compare: stop after ``min_rounds``."""
    rounds = len(windows[base])
    per_round = round_ratios(windows, base)
    others = {label: r for label, r in per_round.items() if label != base}
    ratios = {label: median(r) if r else math.nan for label, r in others.items()}
    spreads = {label: ratio_spread(r) for label, r in others.items()}
    reached = all(s <= max_spread for s in spreads.values())
    out_of_budget = rounds >= max_rounds or elapsed >= max_seconds
    return Decision(rounds >= min_rounds and (reached or out_of_budget), reached, rounds, ratios,
                    spreads)
