import math

import pytest

from batchlab.errors import SpecError
from batchlab.plan import plan_runs
from batchlab.spec import spec_from_dict


def test_grid_times_repeats_in_order_with_seeds():
    spec = spec_from_dict({"train": {"seed": 5}, "sweep": {
        "grid": {"train.batch_size": [16, 32], "train.lr": [0.1, 0.01]}, "repeats": 3}})
    runs = plan_runs(spec)
    assert len(runs) == 12
    assert [r.config.train.batch_size for r in runs[:6]] == [16] * 6
    assert [r.config.train.seed for r in runs[:3]] == [5, 6, 7]
    assert len({r.run_id for r in runs}) == 12
    assert runs[0].point == {"train.batch_size": 16, "train.lr": 0.1, "train.seed": 5}
    assert [r.run_id for r in plan_runs(spec)] == [r.run_id for r in runs]


def test_random_log_uniform_is_deterministic_and_in_range():
    spec = spec_from_dict({"sweep": {"random": {"count": 20, "seed": 1, "params": {
        "train.lr": {"log_uniform": [1e-4, 1e-1]}, "train.batch_size": {"choice": [8, 16]}}}}})
    runs = plan_runs(spec)
    lrs = [r.config.train.lr for r in runs]
    assert len(runs) == 20 and all(1e-4 <= x <= 1e-1 for x in lrs)
    # log-uniform: about half the samples below the geometric mean 10^-2.5
    below = sum(math.log10(x) < -2.5 for x in lrs)
    assert 4 <= below <= 16
    assert lrs == [r.config.train.lr for r in plan_runs(spec)]


def test_duplicate_points_are_planned_once():
    spec = spec_from_dict({"train": {"lr": 0.1}, "sweep": {"grid": {"train.lr": [0.1, 0.1]}}})
    assert len(plan_runs(spec)) == 1


def test_bad_sweep_keys():
    with pytest.raises(SpecError, match="unknown field 'train.bach_size'"):
        plan_runs(spec_from_dict({"sweep": {"grid": {"train.bach_size": [1]}}}))
    with pytest.raises(SpecError, match="must start with data., model. or train."):
        plan_runs(spec_from_dict({"sweep": {"grid": {"lr": [1]}}}))
    with pytest.raises(SpecError, match="empty list"):
        plan_runs(spec_from_dict({"sweep": {"grid": {"train.lr": []}}}))
    with pytest.raises(SpecError, match="train.batch_size"):
        plan_runs(spec_from_dict({"sweep": {"grid": {"train.batch_size": [0]}}}))


def test_explicit_points_cross_the_grid():
    spec = spec_from_dict({"sweep": {"grid": {"train.batch_size": [16, 32]}, "points": [
        {"train.lr": 0.1, "train.schedule.name": "constant"},
        {"train.lr": 0.1, "train.schedule.name": "power"}]}})
    runs = plan_runs(spec)
    assert [(r.config.train.batch_size, r.config.train.schedule.name) for r in runs] == [
        (16, "constant"), (16, "power"), (32, "constant"), (32, "power")]


def test_steps_based_runs_can_be_swept():
    spec = spec_from_dict({"train": {"steps": 50}, "sweep": {"grid": {"train.batch_size": [16, 32]}}})
    runs = plan_runs(spec)
    assert [(r.config.train.epochs, r.config.train.steps) for r in runs] == [(None, 50), (None, 50)]


def test_a_seed_in_the_grid_is_honoured_and_repeats_count_from_it():
    spec = spec_from_dict({"train": {"seed": 7},
                           "sweep": {"grid": {"train.seed": [0, 10]}, "repeats": 2}})
    assert [r.config.train.seed for r in plan_runs(spec)] == [0, 1, 10, 11]
