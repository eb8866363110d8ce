import math

import pytest
import torch

from batchlab.events import MetricRows, RunEnded, RunStarted
from batchlab.spec import RunConfig, spec_from_dict
from batchlab.train.loop import train_run


def config(**train) -> RunConfig:
    s = spec_from_dict({
        "data": {"name": "synthetic", "shape": [12], "classes": 3, "size": 300},
        "model": {"name": "mlp", "hidden": [16]},
        "train": {"batch_size": 32, "epochs": 3, "lr": 0.05, "threads": 1, **train},
    })
    return RunConfig(data=s.data, model=s.model, train=s.train)


def collect(cfg, **kw):
    events = []
    end = train_run(cfg, events.append, **kw)
    rows = [r for e in events if isinstance(e, MetricRows) for r in e.rows]
    return end, events, rows


def series(rows, name):
    return [(r[1], r[2]) for r in rows if r[0] == name]


def test_records_every_step_and_every_eval():
    cfg = config()
    end, events, rows = collect(cfg)
    assert end.status == "completed" and isinstance(events[0], RunStarted)
    assert isinstance(events[-1], RunEnded)
    n_train = end.summary["n_train"]
    spe = math.ceil(n_train / 32)
    total = 3 * spe
    assert end.steps == total == events[0].total_steps
    loss = series(rows, "train_loss")
    assert [s for s, _ in loss] == list(range(1, total + 1))
    assert [s for s, _ in series(rows, "lr")] == list(range(1, total + 1))
    assert [s for s, _ in series(rows, "val_acc")] == [0, spe, 2 * spe, 3 * spe]
    assert len(series(rows, "samples_per_s")) == 3
    # examples seen: the last batch of an epoch is partial
    last = [r for r in rows if r[0] == "train_loss" and r[1] == spe][0]
    assert last[4] == n_train and last[3] == pytest.approx(1.0)
    first, final = series(rows, "val_loss")[0][1], series(rows, "val_loss")[-1][1]
    assert final < first
    assert end.summary["final_val_acc"] == series(rows, "val_acc")[-1][1]
    assert end.summary["num_classes"] == 3  # the diagnosis's chance level (1/C, ln C)
    assert end.summary["best_val_acc"] == max(v for _, v in series(rows, "val_acc"))


def test_same_config_same_numbers():
    _, _, a = collect(config())
    _, _, b = collect(config())
    assert series(a, "train_loss") == series(b, "train_loss")
    _, _, c = collect(config(seed=1))
    assert series(a, "train_loss") != series(c, "train_loss")


def test_scaled_lr_and_schedule_are_what_is_applied():
    cfg = config(batch_size=64, lr=0.1, scale_lr="linear", base_batch_size=32,
                 schedule={"name": "step", "step_size": 1, "gamma": 0.5})
    end, _, rows = collect(cfg)
    spe = end.summary["steps_per_epoch"]
    lrs = dict(series(rows, "lr"))
    assert end.summary["effective_lr"] == pytest.approx(0.2)
    assert lrs[1] == pytest.approx(0.2) and lrs[spe + 1] == pytest.approx(0.1)
    assert lrs[2 * spe + 1] == pytest.approx(0.05)


def test_divergence_is_stored_not_raised():
    end, _, rows = collect(config(lr=1e6, momentum=0.9))
    assert end.status == "diverged"
    bad = end.summary["diverged_at_step"]
    assert not math.isfinite(dict(series(rows, "train_loss"))[bad])
    assert max(s for s, _ in series(rows, "train_loss")) == bad
    assert "non-finite" in end.error


def test_error_ends_run_as_failed():
    s = spec_from_dict({"data": {"name": "synthetic", "shape": [12]}, "model": {"name": "nomodel"}})
    end, _, _ = collect(RunConfig(data=s.data, model=s.model, train=s.train))
    assert end.status == "failed" and "nomodel" in end.error


def test_checkpoint_resume_continues_bit_for_bit(tmp_path):
    cfg = config(epochs=4)
    _, _, full = collect(cfg)
    ckpt = tmp_path / "run.pt"
    events = []

    def interrupt_in_third_epoch(e):
        events.append(e)
        if isinstance(e, MetricRows) and e.step > 2 * 10 + 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_run(cfg, interrupt_in_third_epoch, checkpoint_path=ckpt)
    assert ckpt.exists()
    end, resumed_events, rest = collect(cfg, checkpoint_path=ckpt)
    start = resumed_events[0]
    assert start.resumed_from > 0 and start.resumed_from % end.summary["steps_per_epoch"] == 0
    assert end.status == "completed" and not ckpt.exists()
    full_loss = dict(series(full, "train_loss"))
    for step, value in series(rest, "train_loss"):
        assert value == full_loss[step]
    assert min(s for s, _ in series(rest, "train_loss")) == start.resumed_from + 1
    assert end.summary["final_val_acc"] == dict(series(full, "val_acc"))[end.steps]


def test_resume_is_refused_past_what_the_store_holds(tmp_path):
    cfg = config(epochs=3)
    ckpt = tmp_path / "run.pt"

    def stop_late(e):
        if isinstance(e, MetricRows) and e.step > 10:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_run(cfg, stop_late, checkpoint_path=ckpt)
    _, events, _ = collect(cfg, checkpoint_path=ckpt, max_resume_step=0)
    assert events[0].resumed_from == 0


def test_corrupt_checkpoint_warns_and_starts_over(tmp_path):
    ckpt = tmp_path / "run.pt"
    ckpt.write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="unreadable"):
        end, events, _ = collect(config(epochs=1), checkpoint_path=ckpt)
    assert events[0].resumed_from == 0 and end.status == "completed"


def test_threads_untouched_by_run():
    before = torch.get_num_threads()
    collect(config(epochs=1))
    assert torch.get_num_threads() == before


def test_the_train_subset_is_as_large_as_validation_within_bounds():
    from batchlab.train.loop import TRAIN_EVAL_MAX, TRAIN_EVAL_MIN, train_eval_size

    assert train_eval_size(1437, 360) == TRAIN_EVAL_MIN  # digits: 1/8 of the set is below 256
    assert train_eval_size(40000, 10000) == TRAIN_EVAL_MAX
    assert train_eval_size(8000, 1000) == 1000  # as large as validation
    assert train_eval_size(10000, 2000) == 1250  # at most 1/8 of the training set
    assert train_eval_size(4000, 100) == TRAIN_EVAL_MIN  # a small validation set: the floor
    assert train_eval_size(300, 60) == TRAIN_EVAL_MIN  # the floor ...
    assert train_eval_size(200, 60) == 200  # ... but never more than the training set


def test_a_run_that_fails_before_its_first_evaluation_has_no_best_accuracy():
    """No -1.0 placeholder: tables would show it as an accuracy."""
    from batchlab.train.inputs import RunInputs

    def broken(out, y):
        raise IndexError("Target 7 is out of bounds.")

    end, _, _ = collect(config(epochs=1), inputs=RunInputs(loss_fn=broken))
    assert end.status == "failed" and "Target 7" in end.error
    assert "best_val_acc" not in end.summary
    ok, _, _ = collect(config(epochs=1))
    assert 0 <= ok.summary["best_val_acc"] <= 1


class BatchNormNet(torch.nn.Module):
    """Linear -> BatchNorm1d -> ReLU -> Linear: training mode refuses a batch of one example."""

    def __init__(self, input_shape, num_classes):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(input_shape[0], 16),
                                       torch.nn.BatchNorm1d(16), torch.nn.ReLU(),
                                       torch.nn.Linear(16, num_classes))

    def forward(self, x):
        return self.net(x)


def test_a_batchnorm_model_trains_when_an_epoch_would_end_on_a_single_example():
    """160 training examples in batches of 53 leave a last batch of 1, which BatchNorm1d
    refuses; the batch before it hands it an example: the run completes with the steps the
    plan counts (ceil(160 / 53) = 4 per epoch) and sees every example each epoch."""
    s = spec_from_dict({
        "data": {"name": "synthetic", "shape": [12], "classes": 3, "size": 200},
        "model": {"name": f"{__name__}:BatchNormNet"},
        "train": {"batch_size": 53, "epochs": 2, "lr": 0.05, "threads": 1},
    })
    end, events, rows = collect(RunConfig(data=s.data, model=s.model, train=s.train))
    assert end.status == "completed", end.error
    assert end.summary["n_train"] == 160 and end.summary["steps_per_epoch"] == 4
    assert end.steps == events[0].total_steps == 8
    assert [s for s, _ in series(rows, "train_loss")] == list(range(1, 9))
    epoch_end = [r for r in rows if r[0] == "train_loss" and r[1] == 4][0]
    assert epoch_end[4] == 160 and epoch_end[3] == pytest.approx(1.0)
