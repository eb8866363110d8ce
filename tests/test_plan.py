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


def _ids(raw):
    return [r.run_id for r in plan_runs(spec_from_dict(raw))]


def test_a_swept_value_a_run_ignores_is_dropped_and_said_once():
    grid = {"train.optimizer": ["sgd", "adam"], "train.momentum": [0.0, 0.5]}
    notes: list[str] = []
    runs = plan_runs(spec_from_dict({"sweep": {"grid": grid}}), notes)
    # adam ignores momentum: its two points are one run, at momentum's default
    assert [(r.config.train.optimizer, r.config.train.momentum) for r in runs] == [
        ("sgd", 0.0), ("sgd", 0.5), ("adam", 0.9)]
    assert runs[2].point == {"train.optimizer": "adam"}  # the label says what the run is
    assert notes == ["train.momentum does not apply where train.optimizer = 'adam': the 2 points "
                     "there run with its default 0.9, so they are 1 run (trained once)."]
    # the ids of the runs whose values all apply are those they always had, and the adam run
    # is the one a spec without the momentum sweep plans
    sgd = _ids({"sweep": {"grid": {"train.momentum": [0.0, 0.5]}}})
    assert [r.run_id for r in runs] == [*sgd, *_ids({"train": {"optimizer": "adam"}})]


def test_repeats_count_points_not_seeds_in_the_note():
    grid = {"train.optimizer": ["sgd", "adam"], "train.momentum": [0.0, 0.5]}
    notes: list[str] = []
    runs = plan_runs(spec_from_dict({"sweep": {"grid": grid, "repeats": 2}}), notes)
    assert [(r.config.train.optimizer, r.config.train.seed) for r in runs[4:]] == [("adam", 0), ("adam", 1)]
    assert notes[0].endswith("the 2 points there run with its default 0.9, so they "
                             "are 1 run (trained once).")


def test_a_model_sweep_drops_the_mlp_widths_for_the_zoo_models_that_have_none():
    notes: list[str] = []
    runs = plan_runs(spec_from_dict({"model": {"hidden": [8]}, "sweep": {"grid": {
        "model.name": ["mlp", "lenet5"]}}}), notes)
    assert [r.config.model.hidden for r in runs] == [[8], [256, 128]]
    assert notes == ["model.hidden does not apply where model.name = 'lenet5': the point "
                     "there runs with its default [256, 128]."]


def test_a_swept_field_no_run_reads_is_refused():
    grid = {"train.optimizer": ["adam"], "train.momentum": [0.0, 0.5]}
    with pytest.raises(SpecError, match=r"train.momentum is set, but no run of the sweep reads it: "
                                        r"it does not apply where train.optimizer "
                                        r"= 'adam', so every value would train the same run"):
        plan_runs(spec_from_dict({"sweep": {"grid": grid}}))


def test_a_training_function_keeps_every_swept_value():
    raw = {"train": {"function": "mymod:train", "optimizer": "adam"},
           "sweep": {"grid": {"train.momentum": [0.0, 0.5]}}}
    notes: list[str] = []
    assert [r.config.train.momentum for r in plan_runs(spec_from_dict(raw), notes)] == [0.0, 0.5]
    assert notes == []


def test_random_floats_are_drawn_to_three_significant_digits_inside_their_bounds():
    spec = spec_from_dict({"sweep": {"random": {"count": 30, "seed": 3, "params": {
        "train.lr": {"log_uniform": [0.0012345, 0.1]},
        "train.weight_decay": {"uniform": [0.0, 0.0004567]}}}}})
    for run in plan_runs(spec):
        t = run.config.train
        assert 0.0012345 <= t.lr <= 0.1 and 0.0 <= t.weight_decay <= 0.0004567
        assert float(f"{t.lr:.3g}") == t.lr and float(f"{t.weight_decay:.3g}") == t.weight_decay
        assert run.point["train.lr"] == t.lr  # the label is the stored value
