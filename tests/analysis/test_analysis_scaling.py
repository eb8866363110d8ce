"""Power-law and critical-batch fits recover known parameters."""

from __future__ import annotations

import numpy as np
import pytest

from batchlab.analysis import fit_critical_batch, fit_critical_batch_or_reason, fit_power_law
from batchlab.analysis.scaling import alpha_line

BATCHES = 16 * 2.0 ** np.arange(8)  # 16, 32, ..., 2048


def hyperbola(s_min: float = 1000.0, b_crit: float = 256.0) -> np.ndarray:
    return s_min * (1 + b_crit / BATCHES)


@pytest.mark.parametrize("alpha", [0.5, 1.0])
def test_power_law_recovers_the_exponent(alpha):
    lr = 0.01 * (BATCHES / 16) ** alpha
    fit = fit_power_law(BATCHES, lr)
    assert fit.alpha == pytest.approx(alpha) and fit.coefficient == pytest.approx(0.01 / 16**alpha)
    assert fit.r2 == pytest.approx(1.0) and fit.n == 8


def test_power_law_with_noise_and_invalid_points():
    rng = np.random.default_rng(1)
    lr = 0.01 * (BATCHES / 16) ** 0.5 * np.exp(rng.normal(0, 0.05, BATCHES.size))
    x, y = [*BATCHES, 0.0, np.nan], [*lr, 1.0, 1.0]  # the invalid points are dropped
    fit = fit_power_law(x, y)
    assert fit.n == 8 and fit.alpha == pytest.approx(0.5, abs=0.05) and 0.9 < fit.r2 < 1


def test_power_law_needs_two_distinct_points():
    assert fit_power_law([32], [0.1]) is None
    assert fit_power_law([32, 32], [0.1, 0.2]) is None
    assert fit_power_law([32, -64, 128], [0.1, 0.2, np.nan]) is None
    assert fit_power_law([16, 64], [0.1, 0.1]).alpha == pytest.approx(0.0)


def test_critical_batch_recovers_the_hyperbola():
    fit = fit_critical_batch(BATCHES, hyperbola())
    assert fit.s_min == pytest.approx(1000, rel=1e-3) and fit.e_min == pytest.approx(256_000, rel=1e-3)
    assert fit.b_crit == pytest.approx(256, rel=1e-3) and fit.rmse < 1e-3 and fit.n == 8


@pytest.mark.parametrize("seed", range(5))
def test_critical_batch_with_3_percent_noise_is_within_5_percent(seed):
    noisy = hyperbola() * (1 + np.random.default_rng(seed).normal(0, 0.03, BATCHES.size))
    fit = fit_critical_batch(BATCHES, noisy)
    assert fit.s_min == pytest.approx(1000, rel=0.05) and fit.e_min == pytest.approx(256_000, rel=0.05)
    assert 0.005 < fit.rmse < 0.06


def test_critical_batch_says_why_it_cannot_fit():
    assert "3 or more batch sizes; 2 have" in fit_critical_batch_or_reason([16, 32, 32], [900, 500, 510])
    assert "do not fall" in fit_critical_batch_or_reason(BATCHES, np.full(BATCHES.size, 500.0))
    assert "perfect scaling" in fit_critical_batch_or_reason(BATCHES, 1e6 / BATCHES)
    assert fit_critical_batch([16, 32], [1000, 600]) is None
    assert fit_critical_batch(BATCHES, 1e6 / BATCHES) is None


@pytest.mark.parametrize(("alpha", "text"), [
    (-0.55, "best LR scales as B^-0.55 (falls as the batch grows; linear rule: 1, square-root "
            "rule: 0.5)"),
    (0.5, "best LR scales as B^0.50 (grows with the batch; linear rule: 1, square-root rule: 0.5)"),
    (-0.001, "best LR scales as B^0.00 (does not change with the batch; linear rule: 1, "
             "square-root rule: 0.5)"),
])
def test_the_exponent_is_said_with_the_direction_its_sign_gives(alpha, text):
    assert alpha_line(alpha) == text
    assert "grows as B^-" not in alpha_line(alpha)
