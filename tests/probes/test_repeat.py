"""The repeat rule of timing probes (probes.repeat): pure functions of window timings."""

import math

import pytest

from batchlab.probes.repeat import decide, median_interval, ratio_spread, round_ratios


def windows(base_seconds, variant_seconds, steps=10):
    """fp32 and one variant, one window each per round, ``steps`` steps in the given seconds."""
    return {"fp32": [(steps, s) for s in base_seconds], "bf16": [(steps, s) for s in variant_seconds]}


def test_median_interval_is_the_range_up_to_five_values_then_order_statistics():
    assert median_interval([3.0, 1.0, 2.0]) == (1.0, 3.0)
    assert median_interval([5, 1, 4, 2, 3]) == (1, 5)  # 5 values: range (93.75 % coverage)
    values = list(range(1, 10))  # 9 values: 2nd and 8th (coverage 96.1 %, the 3rd's 82 %)
    assert median_interval(values) == (2, 8)
    assert median_interval(list(range(1, 21))) == (6, 15)  # n = 20: k = 6 (95.9 %)
    with pytest.raises(ValueError):
        median_interval([])


def test_ratio_spread():
    assert ratio_spread([1.0]) == math.inf  # one round shows no spread
    assert ratio_spread([1.0, 1.1, 0.9, 1.0, 1.05]) == pytest.approx(0.2)  # (1.1 - 0.9) / 1.0
    # one wild round among 9 moves the interval by one rank only
    calm = [1.00, 1.01, 0.99, 1.02, 0.98, 1.00, 1.01, 0.99, 1.00]
    assert ratio_spread([*calm[:-1], 3.0]) == pytest.approx(ratio_spread(calm), abs=0.011)


def test_round_ratios_pair_the_windows_of_each_round():
    # round 2 ran at half speed for both (load): its ratio is the same as round 1's
    r = round_ratios(windows([1.0, 2.0], [0.5, 1.0]), "fp32")
    assert r == {"fp32": [1.0, 1.0], "bf16": [2.0, 2.0]}


def test_stops_once_every_ratio_is_within_the_spread():
    base = [1.0, 1.0, 1.0, 1.0, 1.0]
    w = windows(base, [0.50, 0.51, 0.50, 0.505, 0.502])  # ratios 2.0, 1.96, 2.0, 1.98, 1.99
    d = decide(w, "fp32", elapsed=1.0)
    assert d.stop and d.reached and d.rounds == 5
    assert d.ratios["bf16"] == pytest.approx(1 / 0.502)
    assert d.spreads["bf16"] == pytest.approx((2.0 - 1 / 0.51) * 0.502)
    assert "fp32" not in d.spreads
    # the same windows, fewer than the minimum rounds: continue
    short = {k: v[:4] for k, v in w.items()}
    assert not decide(short, "fp32", elapsed=1.0).stop


def test_continues_while_a_ratio_spreads_then_gives_up_at_the_budget():
    noisy = windows([1.0] * 6, [0.5, 0.6, 0.45, 0.55, 0.5, 0.4])  # ratios 1.67 .. 2.5
    d = decide(noisy, "fp32", elapsed=3.0)
    assert not d.stop and not d.reached and d.spreads["bf16"] > 0.05
    assert decide(noisy, "fp32", elapsed=3.0, max_spread=0.6).stop  # a looser limit is met
    timed_out = decide(noisy, "fp32", elapsed=20.0)
    assert timed_out.stop and not timed_out.reached  # out of time: stop, and say not reached
    assert timed_out.spreads["bf16"] == d.spreads["bf16"]
    assert decide(noisy, "fp32", elapsed=3.0, max_rounds=6).stop
    # a budget spent before the minimum of rounds still measures the minimum
    assert not decide(noisy, "fp32", elapsed=99.0, min_rounds=7).stop


def test_nothing_to_compare_stops_after_the_minimum():
    alone = {"fp32": [(10, 1.0)] * 5}
    d = decide(alone, "fp32", elapsed=0.5)
    assert d.stop and d.reached and d.ratios == {} and d.spreads == {}
