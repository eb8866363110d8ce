"""The trainer when things go wrong: divergence between evaluations, checkpoint writes that fail."""

import pytest

from batchlab.events import MetricRows
from batchlab.spec import RunConfig, spec_from_dict
from batchlab.train.loop import train_run


def config(**train) -> RunConfig:
    s = spec_from_dict({
        "data": {"name": "synthetic", "shape": [12], "classes": 3, "size": 600},
        "model": {"name": "mlp", "hidden": [16]},
        "train": {"batch_size": 16, "epochs": 3, "lr": 0.05, "threads": 1, **train},
    })
    return RunConfig(data=s.data, model=s.model, train=s.train)


def collect(cfg, **kw):
    events = []
    end = train_run(cfg, events.append, **kw)
    rows = [r for e in events if isinstance(e, MetricRows) for r in e.rows]
    return end, rows


def test_diverged_summary_and_steps_stop_at_the_divergence():
    end, rows = collect(config(lr=1e8))
    assert end.status == "diverged"
    bad = end.summary["diverged_at_step"]
    spe = end.summary["steps_per_epoch"]
    assert bad < spe  # it blew up within the first epoch, before the first evaluation after 0
    assert end.steps == bad
    assert max(r[1] for r in rows) == bad  # no row (evaluation or other) after the divergence
    val = [(r[1], r[2]) for r in rows if r[0] == "val_acc"]
    assert [s for s, _ in val] == [0]
    assert end.summary["final_val_acc"] == val[-1][1]
    assert end.summary["best_val_acc_step"] == 0
    assert "train_time" not in end.summary  # no training window was completed and timed


@pytest.mark.parametrize("eval_every", [None, 3])
def test_healthy_run_unchanged_by_the_flush_order(eval_every):
    end, rows = collect(config(eval_every=eval_every))
    assert end.status == "completed" and end.steps == end.summary["total_steps"]
    val_steps = [r[1] for r in rows if r[0] == "val_acc"]
    every = eval_every or end.summary["steps_per_epoch"]
    expected = sorted({0, *range(every, end.steps + 1, every), end.steps})
    assert val_steps == expected


def test_a_short_run_writes_its_rows_in_one_batch_not_one_per_evaluation():
    # losses are checked for divergence at every evaluation, but rows go out once a second:
    # a run of milliseconds sends one MetricRows event (its end), though it evaluates 4 times
    events = []
    end = train_run(config(checkpoint=False), events.append)
    batches = [e for e in events if isinstance(e, MetricRows)]
    rows = [r for e in batches for r in e.rows]
    assert end.status == "completed"
    assert len([r for r in rows if r[0] == "val_acc"]) == 4  # step 0 and 3 epoch ends
    assert len(batches) == 1
    assert len([r for r in rows if r[0] == "train_loss"]) == end.steps
