"""bench/precision.py's accuracy verdict: bf16 "costs accuracy" only when the per-seed paired
differences bf16 - fp32 show a loss beyond 1 point that seed noise cannot explain. (Not named
test_precision.py: pytest needs unique basenames without packages, and tests/train has one.)"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from precision import costs_accuracy, mean_std, paired_t  # noqa: E402

#: cnn1d / MNIST-1D, seeds 0-9, bf16 - fp32 final test accuracy as measured (bench/README.md):
#: seeds 0-2 alone look like a 1.1-point loss, the ten seeds show none.
CNN1D_TEN_SEEDS = [-0.018, -0.002, -0.014, 0.021, 0.002, 0.012, 0.001, 0.001, -0.005, 0.028]


def test_a_loss_within_seed_noise_is_not_a_cost():
    assert not costs_accuracy(CNN1D_TEN_SEEDS)
    first_three = CNN1D_TEN_SEEDS[:3]  # mean -1.13 pts, but t = -2.36 with 2 dof (95 %: 4.30)
    assert sum(first_three) / 3 < -0.01
    assert paired_t(first_three) == pytest.approx(-2.36, abs=0.01)
    assert not costs_accuracy(first_three)


def test_a_consistent_loss_beyond_one_point_is_a_cost():
    assert costs_accuracy([-0.015, -0.02, -0.012, -0.018, -0.016])
    assert costs_accuracy([-0.03] * 5)  # no spread at all: as significant as it gets


def test_small_losses_and_gains_are_never_a_cost():
    assert not costs_accuracy([-0.009, -0.008, -0.0095, -0.009, -0.0085])  # consistent but < 1 pt
    assert not costs_accuracy([0.02, 0.01, 0.03])
    assert not costs_accuracy([-0.005])


def test_one_seed_has_no_noise_estimate_so_its_difference_decides():
    assert costs_accuracy([-0.018])
    assert math.isnan(paired_t([-0.018]))


def alternating(mean: float, t: float, n: int) -> list[float]:
    """n (even) differences with this mean whose paired t statistic is ``t``."""
    sd = abs(mean) * math.sqrt(n) / abs(t)
    half = sd * math.sqrt((n - 1) / n)  # +-half alternating has sample std sd
    return [mean + half * (1 if i % 2 else -1) for i in range(n)]


def test_between_table_entries_the_conservative_t_applies():
    # 12 seeds = 11 dof, between the table's 10 (t 2.23) and 12 (2.18): 2.23 applies
    diffs = alternating(-0.02, -2.2, 12)
    assert paired_t(diffs) == pytest.approx(-2.2)
    assert not costs_accuracy(diffs)
    assert costs_accuracy(alternating(-0.02, -2.25, 12))
    assert costs_accuracy(alternating(-0.02, -2.1, 40))  # beyond the table: 2.05


def test_mean_std_is_in_percent():
    assert mean_std([0.93, 0.95]) == "94.0 ± 1.4 %"
    assert mean_std([0.981]) == "98.1 %"
