"""What ``bl.sweep`` refuses before training (``batchlab.apicheck``) and what it says when
every run failed: issue 21, part 2, items 1, 2, 3 and 5."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

import batchlab as bl
from batchlab.errors import ExecutorError, ModelError, SpecError


def digits(n=300):
    x, y = load_digits(return_X_y=True)
    return x[:n].astype(np.float32) / 16, y[:n]


def sweep(tmp_path, model, data=None, **kw):
    kw = {"grid": {"batch_size": [32]}, **kw}
    return bl.sweep("t", model=model, train=data or digits(), store=tmp_path / "s.db",
                    epochs=1, lr=0.05, threads=1, **kw)


@pytest.mark.parametrize("width, why", [
    (12, "extra outputs as classes no example has"),
    (5, "a label without an output fails the run"),
])
def test_an_output_width_other_than_the_classes_is_refused_before_training(tmp_path, width, why):
    # labels 0..9; both the first two labels (0, 1) fit in 5 outputs, so a check of those
    # two examples alone would let width 5 through and fail at run time
    with pytest.raises(ModelError) as err:
        sweep(tmp_path, nn.Linear(64, width))
    text = str(err.value)
    assert f"outputs {width} values per example but the data has 10 classes (labels 0..9)" in text
    assert "output 10" in text and why in text and "num_classes argument" not in text
    assert not (tmp_path / "s.db").exists()


def test_probes_refuse_the_wrong_width_too():
    with pytest.raises(ModelError, match="outputs 12 values"):
        bl.throughput(model=nn.Linear(64, 12), train=digits(), batch_sizes=[16])


class FailsOnBigBatches(nn.Module):
    """Passes the 2-example checks, then fails in every run."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if len(x) > 2:
            raise RuntimeError("boom in forward")
        return self.fc(x)


def test_a_sweep_whose_every_run_failed_raises_with_the_cause(tmp_path):
    with pytest.raises(ExecutorError) as err:
        sweep(tmp_path, FailsOnBigBatches(), grid={"batch_size": [16, 32]})
    text = str(err.value)
    assert "all 2 runs of 't' failed with the same error: RuntimeError: boom in forward" in text
    assert "call bl.sweep again" in text and f"bl.open('{tmp_path / 's.db'}').runs('t')" in text
    assert err.value.exit_code == 1
    with bl.open(tmp_path / "s.db") as db:  # the failed runs are stored, with their errors
        assert [r.status for r in db.store.runs("t")] == ["failed", "failed"]


def test_a_call_whose_every_run_failed_raises_beside_runs_that_completed(tmp_path):
    # the experiment's earlier run completed, so the call whose only run failed returned as a
    # success (no error; with verbose=False not a word)
    sweep(tmp_path, nn.Linear(64, 10), verbose=False)
    # the models differ on purpose: each later call says so, their runs sharing the experiment
    with pytest.warns(UserWarning, match="already has runs with another model"):
        with pytest.raises(ExecutorError) as err:
            sweep(tmp_path, FailsOnBigBatches(), verbose=False)
        assert "the only run this call trained (" in str(err.value)
        assert "failed: RuntimeError: boom in forward" in str(err.value)
        with pytest.raises(ExecutorError, match="all 2 runs this call trained failed with the same error"):
            sweep(tmp_path, FailsOnBigBatches(), grid={"batch_size": [16, 64]}, verbose=False)
        # one run of the call that completes: the call returns, its failed row in the table
        done = sweep(tmp_path, FailsAtBatch16(), grid={"batch_size": [16, 48]}, verbose=False)
    assert [(r["batch_size"], r["status"]) for r in done.rows
            if r["model"].startswith("python:FailsAtBatch16")] == [(16, "failed"), (48, "completed")]


class FailsAtBatch16(FailsOnBigBatches):
    """Trains at every batch size but 16 (240 training examples: no last batch of 16 at 48)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if len(x) == 16 and self.training:
            raise RuntimeError("boom at 16")
        return self.fc(x)


def test_a_batch_larger_than_the_training_set_is_refused(tmp_path):
    with pytest.raises(SpecError) as err:  # 300 examples, 240 after the validation split
        sweep(tmp_path, nn.Linear(64, 10), grid={"batch_size": [32, 4096]})
    assert "train.batch_size 4096 is larger than the training set (240 examples" in str(err.value)
    assert "at most 240" in str(err.value) and "val_fraction" in str(err.value)
    assert not (tmp_path / "s.db").exists()


def regression(n=120, target_shape=(-1,)):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    return x, (x @ np.array([1.0, -1.0, 0.5, 2.0], np.float32)).reshape(target_shape)


@pytest.mark.parametrize("model, targets, fix", [
    (nn.Linear(4, 1), (-1,), "out.squeeze(-1)"),
    (nn.Sequential(nn.Linear(4, 1), nn.Flatten(0)), (-1, 1), "y.reshape(-1)"),
])
def test_regression_outputs_that_would_broadcast_are_refused(tmp_path, model, targets, fix):
    with pytest.raises(ModelError) as err:
        sweep(tmp_path, model, regression(target_shape=targets), loss=nn.MSELoss())
    text = str(err.value)
    assert "N x N" in text and fix in text
    assert not (tmp_path / "s.db").exists()


def test_a_loss_that_aligns_the_shapes_itself_is_accepted(tmp_path):
    # (N, 1) outputs against (N,) targets are fine when the loss squeezes them
    def mse(out, y):
        return nn.functional.mse_loss(out.squeeze(-1), y)

    res = sweep(tmp_path, nn.Linear(4, 1), regression(target_shape=(-1,)), loss=mse)
    assert [r["status"] for r in res.rows] == ["completed"]


def test_matching_regression_shapes_train(tmp_path):
    res = sweep(tmp_path, nn.Linear(4, 1), regression(target_shape=(-1, 1)), loss=nn.MSELoss())
    assert [r["status"] for r in res.rows] == ["completed"]


def test_a_model_returning_a_tuple_is_told_to_return_the_tensor(tmp_path):
    """nn.LSTM returns (output, (h, c)): refused before training with the wrapper to write."""
    with pytest.raises(ModelError) as err:
        sweep(tmp_path, nn.LSTM(64, 10))
    text = str(err.value)
    assert text.startswith("model=LSTM returns a tuple, not a tensor; the loss and the accuracy "
                           "need one tensor from forward")
    assert "out, _ = self.lstm(x); return self.head(out[:, -1])" in text
    assert not (tmp_path / "s.db").exists()
    with pytest.raises(ModelError, match="model=LSTM returns a tuple"):
        bl.max_batch(model=nn.LSTM(64, 10), train=digits())


def test_one_example_per_forward_pass_through_batchnorm_is_refused(tmp_path):
    net = nn.Sequential(nn.Linear(64, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 10))
    with pytest.raises(SpecError, match=r"train.batch_size = 4 with train.accumulate = 4 forwards "
                                        r"micro-batches of 1 example, but model 'Sequential' has "
                                        r"BatchNorm layers"):
        sweep(tmp_path, net, grid={"batch_size": [8, 4]}, accumulate=4)
    assert not (tmp_path / "s.db").exists()  # refused before the store is opened


def test_a_float64_model_is_told_to_convert_not_to_change_its_shape(tmp_path):
    # torch says only "mat1 and mat2 must have the same dtype"; the old advice was to make the
    # model accept the data's shape, which is right already
    with pytest.raises(ModelError) as err:
        sweep(tmp_path, nn.Linear(64, 10).double())
    text = str(err.value)
    assert "parameters are torch.float64" in text and "model.float()" in text
    assert "data's shape" not in text
    with pytest.raises(ModelError, match="data's shape"):  # a real shape error keeps its advice
        sweep(tmp_path, nn.Linear(63, 10))


@pytest.mark.parametrize("probe", [False, True])
def test_a_model_without_trainable_parameters_is_named_not_the_optimizer(tmp_path, probe):
    # no optimizer= was given, yet the error said "optimizer= fails ... empty parameter list"
    frozen = nn.Linear(64, 10).requires_grad_(False)
    with pytest.raises(ModelError) as err:
        if probe:
            bl.lr_find(model=frozen, train=digits(), batch_size=32, epochs=1)
        else:
            sweep(tmp_path, frozen)
    assert "model=Linear has no trainable parameters" in str(err.value)
    assert "optimizer=" not in str(err.value)


def test_one_dimensional_inputs_are_told_to_reshape(tmp_path):
    x, y = digits()
    with pytest.raises(ModelError) as err:
        sweep(tmp_path, nn.Linear(1, 10), data=(x[:, 0], y))
    assert "inputs of shape (N,)); for one input feature pass x.reshape(-1, 1)" in str(err.value)
    assert "data's shape" not in str(err.value)


@pytest.mark.parametrize("call", ["sweep", "grid", "lr_find"])
def test_cuda_without_a_gpu_is_refused_before_anything_trains(tmp_path, monkeypatch, call):
    # each run failed with it (stored, one by one), and bl.lr_find raised torch's RuntimeError
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SpecError, match="device='cuda' but this machine has no CUDA device"):
        if call == "lr_find":
            bl.lr_find(model=nn.Linear(64, 10), train=digits(), device="cuda", epochs=1)
        elif call == "grid":
            sweep(tmp_path, nn.Linear(64, 10), grid={"device": ["cpu", "cuda"]})
        else:
            sweep(tmp_path, nn.Linear(64, 10), device="cuda")
    assert not (tmp_path / "s.db").exists()


@pytest.mark.parametrize("schedule, words", [
    ({"name": "cosine", "warmup": 1000},
     "train.schedule.warmup = 1000 steps is as long as the run (8 steps)"),
    ("step",
     "train.schedule step: its first decay comes after 10 epochs, at or past the end of a run of 1 epoch"),
])
def test_a_schedule_not_what_its_name_promises_is_said_as_the_cli_says_it(tmp_path, schedule, words):
    # the CLI's sweep says these before training; bl.sweep trained them without a word
    with pytest.warns(UserWarning, match="") as said:
        sweep(tmp_path, nn.Linear(64, 10), schedule=schedule, verbose=False)
    assert [str(w.message) for w in said if words in str(w.message)]
    assert all(w.filename == __file__ for w in said if words in str(w.message))  # the caller's line


def test_augmentations_and_channels_last_get_the_clis_checks(tmp_path):
    # resized_crop and channels_last failed every run of flat data one by one; flip reversed a
    # table's columns without a word (the CLI refuses the first two and notes the last)
    with pytest.raises(SpecError, match="'resized_crop' needs image examples"):
        sweep(tmp_path, nn.Linear(64, 10), augment=["resized_crop"])
    with pytest.raises(SpecError, match="'resized_crop' needs image examples"):  # a probe too
        bl.throughput(model=nn.Linear(64, 10), train=digits(), augment=["resized_crop"], batch_sizes=[16])
    with pytest.raises(SpecError, match="channels_last = true needs image inputs"):
        sweep(tmp_path, nn.Linear(64, 10), channels_last=True)
    assert not (tmp_path / "s.db").exists()
    with pytest.warns(UserWarning, match="data.augment flip on flat examples of 64 features"):
        sweep(tmp_path, nn.Linear(64, 10), augment=["flip"], verbose=False)
