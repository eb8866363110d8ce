"""The sweep's preflight: a model that does not fit the data, or a batch larger than the
training set, is refused before anything is stored, with what to change."""

import sys
import textwrap

import pytest

from batchlab.errors import ModelError, SpecError
from batchlab.execute.datacache import DataCache
from batchlab.execute.sweep import prepare_sweep
from batchlab.models.check import check_forward
from batchlab.spec import spec_from_dict

FACTORIES = """
import torch
from torch import nn

def two_outputs(input_shape, num_classes):
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 2))

def fifteen_outputs(input_shape, num_classes):
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 15))

class Unsqueezed(nn.Module):
    def __init__(self, input_shape, num_classes):
        super().__init__()
        self.fc = nn.Linear(12, num_classes)
    def forward(self, x):
        return self.fc(x).unsqueeze(-1)

def wrong_width(input_shape, num_classes):
    return nn.Sequential(nn.Linear(7, num_classes))

def fits(input_shape, num_classes):
    return nn.Sequential(nn.Flatten(), nn.Linear(12, num_classes))

def normed(input_shape, num_classes):
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.BatchNorm1d(8), nn.ReLU(),
                         nn.Linear(8, num_classes))
"""


@pytest.fixture
def factories(tmp_path, monkeypatch):
    (tmp_path / "pf_models.py").write_text(textwrap.dedent(FACTORIES))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "pf_models"
    sys.modules.pop("pf_models", None)


def spec(model, **train):
    return spec_from_dict({
        "data": {"name": "synthetic", "shape": [12], "classes": 10, "size": 200},
        "model": {"name": model}, "train": {"epochs": 1, **train}})


@pytest.mark.parametrize("factory, needles", [
    ("two_outputs", ["outputs 2 values per example but the data has 10 classes",
                     "make its last layer output 10"]),
    ("fifteen_outputs", ["outputs 15 values per example but the data has 10 classes"]),
    ("Unsqueezed", ["returns an output of shape (2, 10, 1)", "(batch, classes) = (2, 10)",
                    "flatten(1)"]),
    ("wrong_width", ["fails on a batch of this data", "One example has shape (12,)",
                     "first layer"]),
])
def test_model_that_does_not_fit_the_data_is_refused(factories, factory, needles):
    with pytest.raises(ModelError) as err:
        prepare_sweep(spec(f"{factories}:{factory}"), DataCache())
    for needle in needles:
        assert needle in str(err.value)


def test_model_that_fits_passes_and_keeps_its_mode(factories):
    prepared = prepare_sweep(spec(f"{factories}:fits"), DataCache())
    assert len(prepared.runs) == 1
    import torch
    from torch import nn
    net = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5))
    check_forward(net, torch.zeros(2, 3), 4, "net")
    assert net.training  # put back in train mode


def test_batch_larger_than_training_set_is_refused():
    s = spec_from_dict({
        "data": {"name": "synthetic", "shape": [12], "classes": 3, "size": 100},
        "model": {"name": "mlp", "hidden": [4]}, "train": {"epochs": 1},
        "sweep": {"grid": {"train.batch_size": [16, 128, 512]}}})
    with pytest.raises(SpecError) as err:
        prepare_sweep(s, DataCache())
    text = str(err.value)
    assert "train.batch_size 128, 512 is larger than the training set (80 examples" in text
    assert "at most 80 (full batch)" in text


def test_channels_last_on_data_that_are_not_images_is_refused_before_the_sweep():
    s = spec_from_dict({
        "data": {"name": "synthetic", "shape": [12], "classes": 3, "size": 100},
        "model": {"name": "mlp", "hidden": [4]}, "train": {"epochs": 1, "channels_last": True}})
    with pytest.raises(SpecError, match=r"train.channels_last = true needs image inputs .* examples "
                                        r"have shape \(12,\); set train.channels_last = false"):
        prepare_sweep(s, DataCache())
    images = spec_from_dict({
        "data": {"name": "synthetic", "shape": [1, 8, 8], "classes": 3, "size": 100},
        "model": {"name": "mlp", "hidden": [4]},
        "train": {"epochs": 1, "channels_last": True, "precision": "bf16"}})
    assert len(prepare_sweep(images, DataCache()).runs) == 1


def test_run_sweep_checks_and_trains_from_one_load_of_the_data(tmp_path, monkeypatch):
    # run_sweep without a prepared sweep checks the inputs with the in-process executor's data
    # cache, so a data set (an image folder decoded into memory, say) is loaded once, not twice
    import batchlab.execute.datacache as datacache
    from batchlab.execute.inline import InlineExecutor
    from batchlab.execute.sweep import run_sweep
    from batchlab.store import Store

    loads = []
    real = datacache.load_data
    monkeypatch.setattr(datacache, "load_data", lambda s: loads.append(s) or real(s))
    sweep = spec_from_dict({
        "name": "once", "data": {"name": "synthetic", "shape": [4], "classes": 2, "size": 64},
        "model": {"name": "mlp", "hidden": [4]},
        "train": {"epochs": 1, "batch_size": 16, "threads": 1, "checkpoint": False},
        "sweep": {"grid": {"train.lr": [0.01, 0.1]}}})
    with Store(tmp_path / "s.db") as store:
        outcome = run_sweep(sweep, store, InlineExecutor(threads=1))
    assert [r.status for r in outcome.records] == ["completed", "completed"]
    assert len(loads) == 1


def regression_spec(tmp_path, model, targets):
    import numpy as np
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "r.npz", x=rng.normal(size=(40, 12)), y=rng.normal(size=targets))
    return spec_from_dict({"data": {"name": "npz", "path": str(tmp_path / "r.npz")},
                           "model": {"name": model}, "train": {"epochs": 1}})


def test_regression_model_is_sized_and_checked_by_target_columns(factories, tmp_path):
    # a factory's num_classes is the number of target columns: 3 here, 1 for (N,) targets
    prepared = prepare_sweep(regression_spec(tmp_path, f"{factories}:fits", (40, 3)), DataCache())
    assert len(prepared.runs) == 1
    assert len(prepare_sweep(regression_spec(tmp_path, "mlp", (40,)), DataCache()).runs) == 1
    with pytest.raises(ModelError) as err:
        prepare_sweep(regression_spec(tmp_path, f"{factories}:two_outputs", (40,)), DataCache())
    assert ("outputs 2 values per example but the data has 1 regression target; make its "
            "last layer output 1") in str(err.value)


def test_a_step_decay_past_the_end_of_a_shortened_run_is_said():
    """`--set train.epochs=2` on a study with a step decay at epoch 10: trained (the demo's
    quick version does this), and said once, not stored silently as a decay that never came."""
    spec = spec_from_dict({"data": {"name": "synthetic", "shape": [6], "classes": 3, "size": 80},
                           "model": {"name": "mlp", "hidden": [4]},
                           "train": {"epochs": 2, "schedule": {"name": "step", "step_size": 10}},
                           "sweep": {"grid": {"train.lr": [0.1, 0.01]}}})
    notes = prepare_sweep(spec).notes
    assert len(notes) == 1 and "first decay comes after 10 epochs" in notes[0]
    longer = spec.model_copy(update={"train": spec.train.model_copy(update={"epochs": 12})})
    assert prepare_sweep(longer).notes == []


def test_an_augmentation_the_data_cannot_take_is_refused_before_anything_trains():
    spec = spec_from_dict({"data": {"name": "synthetic", "shape": [6], "classes": 3, "size": 80,
                                    "augment": ["resized_crop"]},
                           "model": {"name": "mlp", "hidden": [4]}, "train": {"epochs": 1}})
    with pytest.raises(SpecError, match="'resized_crop' needs image examples"):
        prepare_sweep(spec)
    flat = spec.model_copy(update={"data": spec.data.model_copy(update={"augment": ["flip"]})})
    assert any("flip on flat examples of 6 features" in n for n in prepare_sweep(flat).notes)


@pytest.mark.parametrize("train, needles", [
    ({"batch_size": 4, "accumulate": 4},
     ["train.batch_size = 4 with train.accumulate = 4 forwards micro-batches of 1 example",
      "has BatchNorm layers, which cannot train on one example per forward pass",
      "use train.accumulate = 2 (micro-batches of 2), or a batch of 8 with the same accumulation."]),
    ({"batch_size": 2, "accumulate": 2},
     ["use no train.accumulate (one forward pass per batch), or a batch of 4"]),
    ({"batch_size": 8, "micro_batch_size": 1},
     ["train.micro_batch_size = 1 forwards 1 example at a time", "set train.micro_batch_size = 2"]),
    ({"batch_size": 1}, ["train.batch_size = 1 forwards 1 example at a time",
                         "use train.batch_size = 2 or more."]),
])
def test_one_example_per_forward_pass_through_batchnorm_is_refused_before_the_sweep(
        factories, train, needles):
    with pytest.raises(SpecError) as err:
        prepare_sweep(spec(f"{factories}:normed", **train), DataCache())
    for needle in needles:
        assert needle in str(err.value)
    # two per forward pass train; and a model without BatchNorm takes one
    assert len(prepare_sweep(spec(f"{factories}:normed", batch_size=4, accumulate=2), DataCache()).runs) == 1
    assert len(prepare_sweep(spec(f"{factories}:fits", **train), DataCache()).runs) == 1


def test_a_swept_model_width_no_model_reads_is_refused_before_the_sweep():
    s = spec_from_dict({
        "data": {"name": "synthetic", "shape": [1, 28, 28], "classes": 3, "size": 100},
        "model": {"name": "lenet5"}, "train": {"epochs": 1},
        "sweep": {"grid": {"model.hidden": [[16], [32]]}}})
    with pytest.raises(SpecError, match=r"model.hidden is set, but no run of the sweep reads it: "
                                        r"it does not apply where model.name = 'lenet5'"):
        prepare_sweep(s, DataCache())
