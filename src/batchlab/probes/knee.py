"""Reading a throughput curve: its knee, and whether the timed windows behind it can be trusted.

Pure functions over numbers (no torch, no clock), so they are tested with injected timings.
``probes/throughput.py`` measures the curve and calls them.

The knee (:func:`find_knee`) is the smallest batch size beyond which doubling buys less than
``knee_gain`` (default 1.1, i.e. under 10% more samples/s per doubling): past it a larger
batch mostly costs generalisation and memory and gains little speed.

On a busy machine a curve can be made of noise (a loaded 2-core machine once read
89 -> 154,201 -> 8,008 samples/s). :func:`window_spread` measures how far a batch size's
timed windows disagree, :func:`settle` re-measures a batch size whose windows spread too
much, and :func:`knee_unless_noisy` refuses to read a knee off a curve that stayed noisy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from statistics import median

MAX_SPREAD = 0.2  # windows whose samples/s differ by more than this share of their median: noise
REPEATS = 2  # extra rounds of windows at a batch size whose windows spread more than that


# --------------------------------------------------------------------------- the knee


def explain_knee(batch_sizes: Sequence[int], samples_per_s: Sequence[float],
                 gain: float = 1.1) -> tuple[int | None, str]:
    """The knee of a throughput curve and why: ``(batch_size, reason)`` or ``(None, reason)``.

    The knee is the smallest measured batch size ``b`` beyond which doubling gains less than
    ``gain``: going from ``b`` to *any* larger measured size ``b'`` gains less than ``gain``
    per doubling, where a ratio ``r`` over ``log2(b'/b)`` doublings is ``r ** (1 / log2(b'/b))``
    per doubling (sizes need not be powers of two). Comparing ``b`` with every later size, not
    only the next, keeps one noisy window from deciding: a dip followed by recovery is no knee,
    and a lone late bump of a few percent spread over several doublings does not erase one.
    The largest size cannot be the knee (nothing beyond it was measured). ValueError for
    malformed input (lengths differ, sizes not strictly increasing, non-positive or
    non-finite rates, gain <= 1).
    """
    if len(batch_sizes) != len(samples_per_s):
        raise ValueError("batch_sizes and samples_per_s must have the same length")
    if any(b < 1 for b in batch_sizes) or any(b >= c for b, c in pairwise(batch_sizes)):
        raise ValueError(f"batch sizes must be positive and increasing, got {list(batch_sizes)}")
    if any(not (math.isfinite(s) and s > 0) for s in samples_per_s):
        raise ValueError(f"samples/s must be positive and finite, got {list(samples_per_s)}")
    if not gain > 1:
        raise ValueError(f"gain must be > 1 (1.1 = 10% more samples/s per doubling), got {gain}")
    if len(batch_sizes) < 2:
        return None, "a knee needs throughput at two or more batch sizes"

    def best_gain(i: int) -> tuple[float, int]:
        """The largest per-doubling gain from batch_sizes[i] to any later size, and that size."""
        b, s = batch_sizes[i], samples_per_s[i]
        return max(((samples_per_s[j] / s) ** (1 / math.log2(batch_sizes[j] / b)), batch_sizes[j])
                   for j in range(i + 1, len(batch_sizes)))

    for i in range(len(batch_sizes) - 1):
        g, to = best_gain(i)
        if g < gain:
            return batch_sizes[i], (f"beyond batch size {batch_sizes[i]} every doubling gains less "
                                    f"than {gain:g}x samples/s (at best {g:.2f}x, up to {to})")
    g, to = best_gain(len(batch_sizes) - 2)
    return None, (f"throughput still grows by {g:.2f}x per doubling from {batch_sizes[-2]} to "
                  f"{to}, the largest batch size measured; measure larger batch sizes to find it")


def find_knee(batch_sizes: Sequence[int], samples_per_s: Sequence[float],
              gain: float = 1.1) -> int | None:
    """The knee batch size (see :func:`explain_knee`, which also says why when it is None)."""
    return explain_knee(batch_sizes, samples_per_s, gain)[0]


# --------------------------------------------------------------------------- noisy windows

Window = tuple[int, float]  # (steps, seconds) of one timed window


def window_spread(rates: Sequence[float]) -> float:
    """How far a batch size's windows disagree: (max - min) / median of their samples/s.

    0.0 for a single window. 0.2 means the fastest window was 20 % of the typical one faster
    than the slowest: on a quiet machine 0.1 s windows agree within a few percent.
    """
    if not rates:
        raise ValueError("no windows")
    mid = median(rates)
    return (max(rates) - min(rates)) / mid if mid > 0 else math.inf


@dataclass(frozen=True)
class Settled:
    """The windows kept at one batch size: their samples/s, steps, spread, how many rounds
    were measured, and whether the kept round is within the allowed spread."""

    rates: list[float]
    steps: int
    spread: float
    rounds: int
    reliable: bool


def settle(measure_round: Callable[[], list[Window]], batch_size: int,
           max_spread: float = MAX_SPREAD, repeats: int = REPEATS) -> Settled:
    """Measure rounds of windows (``measure_round``) until one spreads at most ``max_spread``,
    at most ``1 + repeats`` rounds. Keeps the first round within the limit; when none is,
    the least-spread round, marked unreliable. Pure apart from calling ``measure_round``.
    """
    best: Settled | None = None
    for round_ in range(1, repeats + 2):
        windows = measure_round()
        rates = [n * batch_size / max(dt, 1e-9) for n, dt in windows]
        spread = window_spread(rates)
        this = Settled(rates, sum(n for n, _ in windows), spread, round_, spread <= max_spread)
        if this.reliable:
            return this
        if best is None or spread < best.spread:
            best = this
    assert best is not None  # at least one round ran
    return Settled(best.rates, best.steps, best.spread, repeats + 1, False)


def knee_unless_noisy(batch_sizes: Sequence[int], samples_per_s: Sequence[float],
                      spreads: Sequence[float], reliable: Sequence[bool], gain: float,
                      max_spread: float = MAX_SPREAD) -> tuple[int | None, str]:
    """:func:`explain_knee`, unless a batch size's windows stayed too noisy: then
    ``(None, why)``, because a knee read off noise would be advice made up from load."""
    noisy = [(b, s) for b, s, ok in zip(batch_sizes, spreads, reliable, strict=True) if not ok]
    if noisy:
        worst = max(s for _, s in noisy)
        return None, (f"the curve is unreliable, so no knee is read from it: the timed windows at "
                      f"batch size(s) {[b for b, _ in noisy]} still differed by up to {worst:.0%} "
                      f"(more than the {max_spread:.0%} allowed) after repeating them, so other "
                      "work on the machine moved the numbers. Measure again when the machine is "
                      "quieter, with fewer threads (--workers as in your sweep), or with longer "
                      "windows.")
    if not batch_sizes:
        return None, "nothing measured"
    return explain_knee(batch_sizes, samples_per_s, gain)
