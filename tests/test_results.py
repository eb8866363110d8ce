"""Run tables (``batchlab.results``): schedule labels and summary columns (issue 21, part 2,
items 7 and 8)."""

import pytest

from batchlab.results import differing_fields, run_row, schedule_label, with_differences
from batchlab.spec import ScheduleSpec
from batchlab.store import RunRecord


@pytest.mark.parametrize("schedule, label", [
    ({"name": "step"}, "step"),  # a tracked run names the schedule and nothing else
    ({"name": "step", "gamma": 0.5}, "step(x0.5)"),
    ({"name": "multistep"}, "multistep"),
    ({"name": "exponential"}, "exp"),
    (ScheduleSpec(name="step").model_dump(), "step(10ep, x0.1)"),  # a spec's: every setting
    (ScheduleSpec(name="multistep", milestones=[3, 6]).model_dump(), "multistep(3,6ep, x0.1)"),
    (ScheduleSpec(name="exponential", gamma=0.9, unit="step").model_dump(), "exp(x0.9/st)"),
    (ScheduleSpec(name="cosine", warmup=5).model_dump(), "cosine+warmup 5st"),
])
def test_schedule_labels_show_only_the_settings_the_config_holds(schedule, label):
    assert schedule_label({"schedule": schedule}) == label


def record(summary):
    return RunRecord("r1", "failed", {"train": {"batch_size": 16, "lr": 0.1}}, {}, 0.0, None, None,
                     None, 0, None, 0, 1, "IndexError: x", summary, {})


def test_a_run_without_an_evaluation_has_no_best_accuracy():
    assert run_row(record({"best_val_acc": -1.0}))["best_val_acc"] is None  # older stores
    assert run_row(record({}))["best_val_acc"] is None
    assert run_row(record({"best_val_acc": 0.5}))["best_val_acc"] == 0.5


def test_a_run_still_training_shows_its_validation_so_far(tmp_path):
    """Its summary comes when it ends; until then ls/export read its stored rows, as its
    diagnosis does, not '-'."""
    from batchlab.events import MetricRows, RunStarted
    from batchlab.plan import plan_runs
    from batchlab.results import experiment_rows
    from batchlab.spec import spec_from_dict
    from batchlab.store import Store

    spec = spec_from_dict({"name": "live", "sweep": {"grid": {"train.lr": [0.1, 0.01]}}})
    runs = plan_runs(spec)
    with Store(tmp_path / "s.db") as st:
        st.add_experiment("live", spec.model_dump(mode="json"), runs)
        st.record(RunStarted(runs[0].run_id, 100, 0, {}))
        rows = [("val_acc", s, v, s / 10, s * 32, 1.0) for s, v in ((10, 0.5), (20, 0.8), (30, 0.7))]
        rows += [("val_loss", s, v, s / 10, s * 32, 1.0) for s, v in ((10, 1.2), (20, 0.6), (30, 0.9))]
        st.record(MetricRows(runs[0].run_id, rows, 30))
        live, pending = experiment_rows(st, "live")
    assert live["status"] == "running"
    assert (live["final_val_acc"], live["best_val_acc"]) == (0.7, 0.8)
    assert (live["final_val_loss"], live["best_val_loss"]) == (0.9, 0.6)
    assert pending["final_val_acc"] is None  # nothing trained yet


def configured(run_id, train, data=None):
    return RunRecord(run_id, "completed", {"data": data or {"name": "npz", "limit": None},
                                           "train": train}, {}, 0.0, None, None, None, 0, None, 0,
                     1, None, {}, {})


def test_differing_fields_are_those_the_own_columns_do_not_show():
    step = {"name": "step", "step_size": 10, "gamma": 0.1, "min_lr": 0.0}
    records = [
        configured("a", {"batch_size": 16, "lr": 0.1, "seed": 0, "weight_decay": 0.0,
                         "schedule": {**step, "min_lr": 0.0}}),
        configured("b", {"batch_size": 32, "lr": 0.01, "seed": 1, "weight_decay": 0.01,
                         "schedule": {**step, "gamma": 0.5}}, {"name": "npz", "limit": 100}),
    ]
    # batch size, lr, seed have columns; gamma shows in the schedule label (step(10ep, x0.5))
    assert differing_fields(records) == ["data.limit", "train.weight_decay"]
    records.append(configured("c", {"batch_size": 16, "lr": 0.1, "seed": 0, "weight_decay": 0.0,
                                    "schedule": {**step, "min_lr": 0.5}}))
    assert "train.schedule.min_lr" in differing_fields(records)  # same label, other min_lr
    rows = with_differences([run_row(r) for r in records[:2]], records[:2])
    assert [(r["data.limit"], r["train.weight_decay"]) for r in rows] == [(None, 0.0), (100, 0.01)]
    assert differing_fields(records[:1]) == []


def test_a_field_that_does_not_apply_to_a_run_is_blank_in_its_row():
    # momentum is stored for an adam run (its default) but adam never reads it: the table
    # must not show 0.9 as a value that was tried
    records = [configured("s", {"batch_size": 16, "lr": 0.1, "optimizer": "sgd", "momentum": 0.0}),
               configured("a", {"batch_size": 16, "lr": 0.1, "optimizer": "adam", "momentum": 0.9})]
    rows = with_differences([run_row(r) for r in records], records)
    assert [(r["train.optimizer"], r["train.momentum"]) for r in rows] == [("sgd", 0.0), ("adam", None)]
