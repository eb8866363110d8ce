"""Removing experiments and runs, and resetting runs (batchlab rm, retraining stale runs)."""

from __future__ import annotations

import pytest

from batchlab.errors import StoreError
from batchlab.events import MetricRows, RunEnded, RunStarted
from batchlab.plan import plan_runs
from batchlab.spec import spec_from_dict
from batchlab.store import Store
from batchlab.store.lifecycle import plan_removal, remove, reset_runs


def spec(name, sizes):
    return spec_from_dict({"name": name, "sweep": {"grid": {"train.batch_size": sizes}}})


def trained(store, run_id, steps=3):
    store.record(RunStarted(run_id, steps, 0))
    store.record(MetricRows(run_id, [("train_loss", s, 1.0 / s, s / 3, s * 8, 0.1 * s)
                                     for s in range(1, steps + 1)], steps))
    store.record(RunEnded(run_id, "completed", steps, 1.0, {"final_val_acc": 0.5}))


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "s.db") as st:
        a, b = spec("a", [16, 32]), spec("b", [32, 64])  # batch 32 is shared
        for s in (a, b):
            runs = plan_runs(s)
            st.add_experiment(s.name, s.model_dump(mode="json"), runs)
            for r in runs:
                trained(st, r.run_id)
        st.add_probe("a", "throughput", {}, {})
        yield st


def test_removing_an_experiment_keeps_runs_another_one_uses(store):
    removal = plan_removal(store, "a")
    assert removal.experiment == "a" and len(removal.run_ids) == 1 and removal.kept_shared == 1
    assert removal.metric_rows == 3 and removal.probes == 1
    assert removal.describe() == ("experiment 'a': 1 run, 3 metric rows, 1 probe result and their "
                                  "checkpoints; 1 run shared with another experiment stays")
    remove(store, removal)
    assert [e.name for e in store.experiments()] == ["b"]
    assert len(store.runs()) == 3 - 1 and store.probes() == []
    assert [r.config["train"]["batch_size"] for r in store.runs("b")] == [32, 64]
    assert sum(store.count_metric_rows(r.id) for r in store.runs()) == 6


def test_removing_one_run_by_prefix(store):
    victim = store.runs("b")[1]
    removal = plan_removal(store, victim.id[:6])
    assert removal.experiment is None and removal.run_ids == [victim.id]
    remove(store, removal)
    assert [r.id for r in store.runs("b")] == [store.runs("a")[1].id]
    assert store.count_metric_rows(victim.id) == 0


def test_unknown_target_names_what_exists(store):
    with pytest.raises(StoreError, match="no experiment or run matches 'zzz'.*experiments: a, b"):
        plan_removal(store, "zzz")


def test_reset_forgets_what_a_run_recorded(store):
    run = store.runs("a")[0]
    reset_runs(store, [run.id])
    again = store.run(run.id)
    assert again.status == "pending" and again.summary == {} and again.attempts == 0
    assert again.progress_step == 0 and store.count_metric_rows(run.id) == 0
    assert again.config == run.config and run.id in [r.id for r in store.runs("a")]
