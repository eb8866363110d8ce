"""Noisy throughput windows: spread, re-measuring, and no knee from noise (injected timings)."""

import math

import pytest

from batchlab.probes.knee import find_knee, knee_unless_noisy, settle, window_spread


def rounds_of(*rounds):
    """A ``measure_round`` that returns the given rounds of (steps, seconds) windows in order."""
    it = iter(rounds)
    calls = []

    def measure_round():
        calls.append(1)
        return next(it)

    return measure_round, calls


def test_spread_is_range_over_median():
    assert window_spread([100.0, 110.0, 90.0]) == pytest.approx(0.2)
    assert window_spread([5.0]) == 0.0
    with pytest.raises(ValueError):
        window_spread([])


def test_a_quiet_round_is_kept_at_once():
    measure, calls = rounds_of([(10, 0.100), (10, 0.101), (10, 0.099)])
    got = settle(measure, batch_size=8)
    assert got.reliable and got.rounds == 1 and len(calls) == 1
    assert got.steps == 30 and got.rates[0] == pytest.approx(800.0)


def test_a_noisy_round_is_measured_again_and_the_quiet_one_kept():
    noisy = [(10, 0.1), (10, 0.5), (10, 0.1)]  # one window 5x slower: another process ran
    quiet = [(10, 0.2), (10, 0.2), (10, 0.21)]
    measure, calls = rounds_of(noisy, quiet)
    got = settle(measure, batch_size=8, max_spread=0.2, repeats=2)
    assert got.reliable and got.rounds == 2 and len(calls) == 2
    assert got.rates == pytest.approx([400.0, 400.0, 80 / 0.21])


def test_still_noisy_after_the_repeats_is_unreliable_with_the_least_spread_round():
    a = [(1, 0.1), (1, 0.5), (1, 0.1)]  # 10, 2, 10 samples/s: spread 0.8
    b = [(1, 0.1), (1, 0.2), (1, 0.1)]  # 10, 5, 10: spread 0.5
    c = [(1, 0.1), (1, 0.3), (1, 0.1)]  # 10, 3.3, 10: spread 0.67
    measure, calls = rounds_of(a, b, c)
    got = settle(measure, batch_size=1, max_spread=0.2, repeats=2)
    assert not got.reliable and got.rounds == 3 and len(calls) == 3
    assert got.spread == pytest.approx(0.5) and got.rates == pytest.approx([10.0, 5.0, 10.0])


def test_no_knee_from_the_busy_machine_curve_of_the_issue():
    # 89 -> 154,201 -> 8,008 samples/s with windows that disagreed wildly
    sizes, rates = [8, 16, 32], [89.0, 154_201.0, 8_008.0]
    assert find_knee(sizes, rates) == 16  # what was reported before: a knee read off noise
    knee, why = knee_unless_noisy(sizes, rates, [0.05, 3.1, 0.9], [True, False, False], 1.1)
    assert knee is None
    assert "unreliable" in why and "[16, 32]" in why and "310%" in why and "20%" in why


def test_a_quiet_curve_gets_its_knee():
    sizes = [8, 16, 32, 64]
    rates = [100.0, 200.0, 210.0, 215.0]
    knee, why = knee_unless_noisy(sizes, rates, [0.02] * 4, [True] * 4, 1.1)
    assert knee == 16 and "beyond batch size 16" in why
    assert knee_unless_noisy([], [], [], [], 1.1) == (None, "nothing measured")


def test_zero_median_is_infinitely_spread():
    assert math.isinf(window_spread([0.0, 0.0, 1.0]))
