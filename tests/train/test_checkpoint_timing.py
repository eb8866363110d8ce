"""When checkpoints are written: the time-budget rule as a pure function, the timer on a fake
clock, and the loop obeying it (no real timing anywhere)."""

import itertools
import time

import pytest
from test_loop import collect, config

import batchlab.train.checkpoint_timing as checkpoint_timing
import batchlab.train.loop as loop
from batchlab.train.checkpoint_timing import BUDGET, CheckpointTimer, checkpoint_due, measured_cost
from batchlab.train.loop import train_run


@pytest.mark.parametrize(("since_last", "last_cost", "budget", "due"), [
    (0.0, None, BUDGET, True),  # nothing written yet in this attempt: the first epoch end writes
    (0.099, 0.002, 0.02, False),  # a 2 ms write waits 0.1 s ...
    (0.1, 0.002, 0.02, True),
    (99.0, 2.0, 0.02, False),  # ... a 2 s write (a large model) waits 100 s
    (100.0, 2.0, 0.02, True),
    (0.0, 0.0, 0.02, True),  # a free write is always due
    (1.0, 1.0, 1.0, True),  # budget 1: as much time writing as training
])
def test_checkpoint_is_due_once_its_cost_fits_the_budget(since_last, last_cost, budget, due):
    assert checkpoint_due(since_last, last_cost, budget) is due


@pytest.mark.parametrize("budget", [0.0, -0.1, 1.5])
def test_budget_must_be_a_fraction(budget):
    with pytest.raises(ValueError, match="fraction of run time"):
        checkpoint_due(1.0, 0.1, budget)
    with pytest.raises(ValueError, match="fraction of run time"):
        CheckpointTimer(budget)


def test_timer_spaces_writes_by_their_measured_cost():
    now = [0.0]
    timer = CheckpointTimer(0.1, clock=lambda: now[0])
    written = []
    # epoch ends every 0.3 s; each write takes 0.1 s, so the next is due 1.0 s after it ends
    for epoch in range(1, 11):
        now[0] += 0.3
        if timer.due():
            timer.start()
            now[0] += 0.1
            timer.written()
            written.append(epoch)
    assert written == [1, 5, 9]
    assert timer.last_cost == pytest.approx(0.1)


def test_loop_writes_checkpoints_where_the_timer_says(tmp_path, monkeypatch):
    ticks = itertools.count()  # every clock read is one second later; a write costs one second
    timer = CheckpointTimer(0.5, clock=lambda: float(next(ticks)))
    saved = []
    monkeypatch.setattr(loop, "save_checkpoint", lambda path, state: saved.append(state["step"]))
    end, _, _ = collect(config(epochs=6), checkpoint_path=tmp_path / "run.pt", checkpoint_timer=timer)
    spe = end.summary["steps_per_epoch"]
    # due at epoch 1 (first), then 2 s after each write ends: epochs 3 and 5; never at the end
    assert saved == [spe, 3 * spe, 5 * spe]
    assert end.status == "completed"


def test_no_checkpoint_when_switched_off(tmp_path, monkeypatch):
    saved = []
    monkeypatch.setattr(loop, "save_checkpoint", lambda path, state: saved.append(state["step"]))
    train_run(config(epochs=3, checkpoint=False), lambda e: None, checkpoint_path=tmp_path / "r.pt")
    assert saved == []


def test_a_later_run_of_the_same_size_starts_from_the_measured_cost():
    """The first write of a process calibrates; the next run of that model (a sweep worker's
    next run) starts from its cost and writes nothing until the budget allows it."""
    now = [0.0]
    first = CheckpointTimer(0.1, clock=lambda: now[0], key=("size", 1))
    assert first.due()  # nothing measured yet: the first epoch end writes
    first.start()
    now[0] += 0.2
    first.written()
    assert measured_cost(("size", 1)) == pytest.approx(0.2)
    second = CheckpointTimer(0.1, clock=lambda: now[0], key=("size", 1))
    now[0] += 1.9
    assert not second.due()  # a 0.2 s write waits 2 s from the run's start
    now[0] += 0.1
    assert second.due()
    assert CheckpointTimer(0.1, clock=lambda: now[0], key=("size", 2)).due()  # another size


def test_a_sweep_of_short_runs_writes_only_the_first_runs_checkpoint(tmp_path, monkeypatch):
    """Runs far shorter than cost / budget: the first run writes at its first epoch end, the
    next run of the same model in this process writes none (resume stays exact either way)."""
    saved = []

    def slow_save(path, state):  # a write that takes long next to these tiny epochs
        time.sleep(0.2)
        saved.append((path.name, state["step"]))

    monkeypatch.setattr(loop, "save_checkpoint", slow_save)
    monkeypatch.setattr(checkpoint_timing, "_MEASURED", {})
    collect(config(epochs=3), checkpoint_path=tmp_path / "a.pt")
    collect(config(epochs=3), checkpoint_path=tmp_path / "b.pt")
    assert [name for name, _ in saved] == ["a.pt"]
