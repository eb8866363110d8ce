"""first_hit interpolates exactly on a linear ramp; default_target is a fraction of the best."""

from __future__ import annotations

import math
from dataclasses import astuple

import numpy as np
import pytest
from analysis_curves import N_TRAIN, per_epoch, series

from batchlab.analysis import TargetHit, default_target, first_hit


def ramp():
    return per_epoch(lambda e: 0.1 * e, epochs=10, seconds_per_step=0.05)  # 10 steps per epoch


def test_first_hit_interpolates_every_clock_on_a_linear_ramp():
    hit = first_hit(ramp(), 0.35)
    assert astuple(hit) == pytest.approx(astuple(TargetHit(0.35, 35.0, 3.5, 3.5 * N_TRAIN, 1.75)))


def test_first_point_meeting_the_target_is_returned_as_is():
    assert first_hit(ramp(), 0.0) == TargetHit(0.0, 0.0, 0.0, 0.0, 0.0)
    assert first_hit(ramp(), 1.0).step == pytest.approx(100.0)  # reached exactly at the end


def test_target_never_reached_or_no_data_is_none():
    assert first_hit(ramp(), 1.01) is None
    assert first_hit(series([], []), 0.5) is None
    assert first_hit(series([math.nan] * 3, [0, 1, 2]), 0.5) is None
    assert first_hit(ramp(), math.nan) is None


def test_lower_is_better_and_non_finite_points_are_skipped():
    loss = series([2.0, math.nan, 1.0, 0.5], [0, 10, 20, 30])
    hit = first_hit(loss, 1.5, higher_is_better=False)
    assert hit.step == pytest.approx(10.0)  # halfway between the finite points at 0 and 20
    acc = series([0.2, 0.9, 0.4, 0.95], [0, 10, 20, 30])
    assert first_hit(acc, 0.8).step == pytest.approx(10 * 6 / 7)  # the first crossing counts


def test_default_target_is_95_percent_of_the_best():
    assert default_target([0.5, 0.96, math.nan, 0.9]) == pytest.approx(0.912)
    assert default_target([0.8], fraction=0.5) == pytest.approx(0.4)
    assert math.isnan(default_target([]))
    assert math.isnan(default_target(np.array([math.nan])))
