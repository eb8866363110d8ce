"""Run tables (``batchlab.results``): schedule labels and summary columns (issue 21, part 2,
items 7 and 8)."""

import pytest

from batchlab.results import run_row, schedule_label
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
