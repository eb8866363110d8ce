"""The recorder: losses checked without emitting, rows emitted in batches, cut at a divergence."""

import math

import torch

from batchlab.events import MetricRows
from batchlab.train.recorder import Recorder


def recorder():
    events = []
    return Recorder("r", events.append, n_train=40, batch_size=10, steps_per_epoch=4), events


def test_check_finds_a_divergence_without_emitting_and_flush_cuts_the_rows_there():
    rec, events = recorder()
    for step, loss in ((1, 2.0), (2, math.inf), (3, 1.0)):
        rec.log_step(step, torch.tensor(loss), 0.1)
    assert rec.check() == 2
    assert rec.check() == 2  # asked again: the same answer, still nothing emitted
    assert events == []
    rec.log_values(3, {"val_loss": 0.5})  # after the divergence: dropped
    assert rec.flush() == 2
    [batch] = events
    assert isinstance(batch, MetricRows) and batch.step == 2
    assert sorted((r[0], r[1]) for r in batch.rows) == [
        ("lr", 1), ("lr", 2), ("train_loss", 1), ("train_loss", 2)]
    assert rec.flush() is None and len(events) == 1  # nothing left, nothing emitted


def test_rows_checked_earlier_go_out_with_the_next_flush_in_step_order():
    rec, events = recorder()
    rec.log_step(1, torch.tensor(1.5), 0.1)
    assert rec.check() is None
    rec.log_values(1, {"val_acc": 0.5})
    rec.log_step(2, torch.tensor(1.25), 0.1)
    assert rec.flush() is None
    [batch] = events
    assert [(r[0], r[1], r[2]) for r in batch.rows] == [
        ("train_loss", 1, 1.5), ("lr", 1, 0.1), ("val_acc", 1, 0.5),
        ("train_loss", 2, 1.25), ("lr", 2, 0.1)]
    assert batch.step == 2


def test_step_rows_carry_the_epoch_and_examples_that_examples_and_epoch_give():
    # 45 examples in batches of 10: the fifth batch of each epoch is partial (5 examples)
    events = []
    rec = Recorder("r", events.append, n_train=45, batch_size=10, steps_per_epoch=5)
    steps = range(1, 13)
    for step in steps:
        rec.log_step(step, torch.tensor(1.0), 0.1)
    rec.flush()
    rows = [r for r in events[0].rows if r[0] == "train_loss"]
    assert [(r[3], r[4]) for r in rows] == [(rec.epoch(s), rec.examples(s)) for s in steps]
    assert rows[4][3:5] == (1.0, 45) and rows[5][3:5] == (55 / 45, 55)  # an epoch ends at step 5


class _Halved(Recorder):
    """A subclass counting its own way, as a tracked loop's recorder does."""

    def position(self, step: int) -> tuple[float, int]:
        return step / 100, step * 5


def test_a_subclass_that_counts_its_own_way_is_used_for_every_row():
    events = []
    rec = _Halved("r", events.append, n_train=45, batch_size=10, steps_per_epoch=5)
    rec.log_step(3, torch.tensor(1.0), 0.1)
    rec.flush()
    assert {(r[0], r[3], r[4]) for r in events[0].rows} == {("train_loss", 0.03, 15), ("lr", 0.03, 15)}


def test_a_ctrl_c_inside_log_step_leaves_the_buffer_whole_and_flush_works(monkeypatch):
    """A KeyboardInterrupt lands between any two bytecodes: one that cut ``log_step`` between
    buffering the loss and buffering its step made the interrupted run's last flush raise
    (CI, stop 35). The update is then either all there or not at all."""
    rec, events = recorder()
    rec.log_step(1, torch.tensor(1.5), 0.1)

    def interrupted() -> float:
        raise KeyboardInterrupt

    monkeypatch.setattr(rec, "elapsed", interrupted)
    try:
        rec.log_step(2, torch.tensor(1.25), 0.1)
    except KeyboardInterrupt:
        pass
    monkeypatch.undo()
    assert rec.flush() is None
    [batch] = events
    assert sorted((r[0], r[1]) for r in batch.rows) == [("lr", 1), ("train_loss", 1)]
