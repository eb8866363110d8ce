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
