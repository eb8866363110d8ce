"""LR suggestion strategies on synthetic range-test curves whose answer is known."""

import math

import numpy as np
import pytest

from batchlab.probes.suggest import (
    DEFAULT_CURVE_STRATEGY,
    STRATEGIES,
    clean_curve,
    despike,
    disagreement,
    fit_power_law,
    minimum_div_10,
    steepest,
    suggest,
    summarize,
    valley,
)

U = np.linspace(-6, 1, 141)  # log10(lr), 0.05 decades apart
LRS = 10**U
U0 = -2.0  # where the loss falls fastest per decade


def smooth_curve() -> np.ndarray:
    """2 - tanh(log10(lr) - U0) + a blow-up near lr = 10**0.3.

    d/du of -tanh(u - U0) is -sech^2(u - U0), steepest at u = U0; the blow-up term is below
    1e-15 there, so the steepest descent against log10(lr) is at lr = 10**U0 exactly.
    """
    return 2 - np.tanh(U - U0) + np.exp((U - 0.3) / 0.05)


def with_spikes(loss: np.ndarray) -> np.ndarray:
    """One-point spikes up and down: a big one far from the steepest point (what fools a raw
    derivative) and two right beside it."""
    spiked = loss.copy()
    i0 = int(np.argmin(np.abs(U - U0)))
    for i, factor in [(30, 3.0), (60, 0.6), (i0 + 1, 2.5), (i0 - 2, 0.4), (100, 1.8)]:
        spiked[i] *= factor
    return spiked


def test_steepest_finds_the_analytic_point_in_log_lr():
    s = steepest(LRS, smooth_curve())
    assert s.lr is not None and s.strategy == "steepest"
    assert abs(math.log10(s.lr) - U0) <= 0.05 + 1e-9  # within one grid step


def test_valley_is_half_way_down_the_descent():
    loss = smooth_curve()
    s = valley(LRS, loss)
    first = math.floor(0.1 * len(U))  # the skipped start
    bottom = int(np.argmin(loss))
    position = (math.log10(s.lr) - U[first]) / (U[bottom] - U[first])
    assert 0.4 <= position <= 0.6


def test_minimum_div_10_is_a_tenth_of_the_argmin():
    loss = smooth_curve()
    s = minimum_div_10(LRS, loss)
    assert s.lr == pytest.approx(LRS[np.argmin(loss)] / 10)


def test_spikes_do_not_fool_the_default_or_the_filtered_steepest():
    clean, spiked = smooth_curve(), with_spikes(smooth_curve())
    assert suggest(LRS, spiked).lr == suggest(LRS, clean).lr  # default: unchanged
    assert steepest(LRS, spiked).lr == steepest(LRS, clean).lr
    # without despiking the drop after the far spike wins: the test bites
    assert abs(math.log10(steepest(LRS, spiked, window=1).lr) - U0) > 1


def test_the_default_strategy_is_valley():
    assert DEFAULT_CURVE_STRATEGY == "valley"


def test_a_nan_tail_is_cut_and_the_rest_used():
    loss = smooth_curve()
    loss[120:] = np.nan
    s = suggest(LRS, loss)
    assert s.lr is not None and s.lr < LRS[120]


@pytest.mark.parametrize("name", list(STRATEGIES))
@pytest.mark.parametrize("curve, words", [
    (np.full(100, 2.3), "flat"),
    (np.linspace(1.0, 3.0, 100), "lower start_lr"),
    (np.full(100, np.nan), "too few usable points"),
    (np.array([2.3, 2.0, np.inf, 1.0, 0.5] * 2), "too few usable points"),
])
def test_never_none_silently(name, curve, words):
    lrs = np.logspace(-7, 1, len(curve))
    s = STRATEGIES[name](lrs, curve)
    assert s.lr is None and s.strategy == name
    assert words in s.reason


def test_empty_curve_has_a_reason():
    s = suggest([], [])
    assert s.lr is None and "too few" in s.reason


def test_bad_lrs_are_a_caller_error():
    with pytest.raises(ValueError):
        suggest([1e-3, 1e-4, 1e-2], [1.0, 0.9, 0.8])
    with pytest.raises(ValueError, match="unknown"):
        suggest(LRS, smooth_curve(), "nope")


def test_clean_curve_skips_the_documented_fractions():
    lr, loss, why = clean_curve(np.logspace(-7, 1, 100), np.linspace(3, 1, 100))
    assert why == "" and len(lr) == 100 - 10 - 5
    assert lr[0] == pytest.approx(np.logspace(-7, 1, 100)[10])


def test_despike_removes_spikes_and_leaves_everything_else_exact():
    clean = smooth_curve()
    out = despike(with_spikes(clean))
    spikes = np.flatnonzero(with_spikes(clean) != clean)
    kept = np.setdiff1d(np.arange(len(clean)), spikes)
    assert np.array_equal(out[kept], clean[kept])
    assert np.allclose(out[spikes], clean[spikes], rtol=0.01)
    assert np.array_equal(despike(clean), clean)  # nothing taken for a spike, the bottom included


def test_summarize_disagreement_and_power_law():
    assert summarize([0.1, None, 0.4, 0.2]) == (0.2, 0.1, 0.4)
    assert summarize([0.1, 0.4])[0] == pytest.approx(0.2)  # geometric mean of the middle pair
    assert summarize([None, None]) == (None, None, None)
    assert disagreement({"a": 0.01, "b": 0.02}) == {}
    assert disagreement({"a": 0.1, "b": 0.01, "c": None}) == {"b": 0.01, "a": 0.1}
    sizes = [16, 64, 256]
    alpha, c = fit_power_law(sizes, [0.003 * b**0.5 for b in sizes])
    assert alpha == pytest.approx(0.5) and c == pytest.approx(0.003)
    with pytest.raises(ValueError):
        fit_power_law([32, 32], [0.1, 0.2])
