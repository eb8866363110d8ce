"""Objects as run inputs: re-initialisation per run and the fingerprints run ids cover."""

import functools
import importlib.util
import sys
import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from batchlab.errors import ModelError, SpecError
from batchlab.objects import (
    ObjectInputs,
    architecture_fingerprint,
    callable_fingerprint,
    reinitialise,
)


def mse(out, y):
    return ((out - y) ** 2).mean()


def mae(out, y):
    return (out - y).abs().mean()


def test_every_build_is_a_fresh_copy_initialised_by_the_seed():
    template = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    objects = ObjectInputs.create(template, (np.zeros((8, 3), np.float32), np.arange(8) % 2))
    build = objects.run_inputs().build_model
    torch.manual_seed(0)
    a = build(None, None)
    torch.manual_seed(0)
    b = build(None, None)
    torch.manual_seed(1)
    c = build(None, None)
    assert a is not template and a[0].weight is not template[0].weight
    assert torch.equal(a[0].weight, b[0].weight) and not torch.equal(a[0].weight, c[0].weight)


def test_reinitialise_resets_every_submodule():
    net = nn.Sequential(nn.Linear(3, 4), nn.Sequential(nn.Linear(4, 2)))
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
    reinitialise(net)
    assert all(p.abs().sum() > 0 for name, p in net.named_parameters() if name.endswith("weight"))


def test_architecture_fingerprint_sees_shapes_not_values():
    a, b = nn.Linear(3, 4), nn.Linear(3, 4)
    assert architecture_fingerprint(a) == architecture_fingerprint(b)
    assert architecture_fingerprint(a) != architecture_fingerprint(nn.Linear(3, 5))
    assert architecture_fingerprint(a) != architecture_fingerprint(nn.Sequential(nn.Linear(3, 4), nn.Tanh()))


class Scaled(nn.Module):
    """A model configured beyond its repr: ``p`` and the buffer ``shift`` change what it
    computes, and neither shows in ``repr`` or in a shape."""

    def __init__(self, p: float = 0.0, shift: float = 0.0):
        super().__init__()
        self.p = p
        self.register_buffer("shift", torch.tensor([shift]))
        self.lin = nn.Linear(3, 2)

    def forward(self, x):
        return self.lin(F.dropout(x + self.shift, self.p, self.training))


def test_architecture_fingerprint_sees_attributes_buffers_and_frozen_parameters():
    """Two models that differ by a dropout rate held in an attribute, a constant buffer or a
    frozen layer train differently: a rerun of the sweep with the other one skipped it as
    finished and showed the first model's results."""
    assert architecture_fingerprint(Scaled(0.0)) == architecture_fingerprint(Scaled(0.0))
    assert architecture_fingerprint(Scaled(0.0)) != architecture_fingerprint(Scaled(0.9))
    assert architecture_fingerprint(Scaled(shift=0.0)) != architecture_fingerprint(Scaled(shift=1.0))
    frozen = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    frozen[0].requires_grad_(False)
    assert architecture_fingerprint(frozen) != architecture_fingerprint(
        nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2)))
    # eval mode is not a setting (training sets the mode), nor are torch's own attributes
    assert architecture_fingerprint(Scaled().eval()) == architecture_fingerprint(Scaled())


def test_a_sweep_of_another_attribute_value_trains_new_runs(tmp_path):
    import batchlab as bl

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    kw = {"train": (x, y), "batch_size": 16, "lr": 0.1, "epochs": 1, "verbose": False,
          "store": str(tmp_path / "s.db")}
    first = bl.sweep("attrs", model=Scaled(0.0), **kw)
    with pytest.warns(UserWarning, match="another model"):
        second = bl.sweep("attrs", model=Scaled(0.9), **kw)
    assert (first.trained, second.skipped, second.trained) == (1, 0, 1)
    assert len({row["run_id"] for row in second.rows}) == 2


def test_callable_fingerprint_sees_name_source_and_settings():
    assert callable_fingerprint(mse) != callable_fingerprint(mae)
    assert callable_fingerprint(mse).startswith(f"{__name__}.mse@")
    assert callable_fingerprint(nn.HuberLoss(delta=1.0)) != callable_fingerprint(nn.HuberLoss(delta=2.0))
    weighted = nn.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0]))
    assert callable_fingerprint(weighted) != callable_fingerprint(nn.CrossEntropyLoss())
    assert callable_fingerprint(functools.partial(mse)) == callable_fingerprint(functools.partial(mse))


def test_model_spec_names_the_objects():
    data = (np.zeros((8, 3), np.float32), np.zeros((8, 1), np.float32))
    objects = ObjectInputs.create(nn.Linear(3, 1), data, loss=mse)
    spec = objects.model_spec()
    assert spec.name == "python:Linear"
    assert set(spec.kwargs) == {"architecture", "loss"}
    assert objects.data_spec().path == f"memory:{objects.data.fingerprint()}"


def test_an_edited_forward_of_an_inner_block_changes_the_fingerprint(tmp_path, monkeypatch):
    """Same repr and shapes, different code in a block's module file: the class sources make
    the difference (the user edited ``forward`` and re-imported between two sweeps)."""
    def fingerprint_with(activation: str) -> tuple[str, str]:
        folder = tmp_path / activation
        folder.mkdir(exist_ok=True)
        (folder / "userblock.py").write_text(
            "import torch\nfrom torch import nn\n\n\nclass Block(nn.Module):\n"
            "    def __init__(self):\n        super().__init__()\n        self.lin = nn.Linear(3, 3)\n\n"
            f"    def forward(self, x):\n        return torch.{activation}(self.lin(x))\n")
        spec = importlib.util.spec_from_file_location("userblock", folder / "userblock.py")
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, "userblock", module)  # as an import would
        spec.loader.exec_module(module)
        net = nn.Sequential(module.Block(), nn.Linear(3, 2))
        return repr(net), architecture_fingerprint(net)

    relu, tanh = fingerprint_with("relu"), fingerprint_with("tanh")
    assert relu[0] == tanh[0] and relu[1] != tanh[1]
    assert fingerprint_with("relu") == relu


def make_net(input_shape, num_classes, width=16):
    """The README's CLI factory (``model.name = "mymodels:make_net"``)."""
    return nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(input_shape)), width), nn.ReLU(),
                         nn.Linear(width, num_classes))


def images(n=12):
    return np.zeros((n, 2, 3, 3), np.float32), np.arange(n) % 4


def test_a_factory_gets_the_data_s_shape_and_classes_as_the_cli_passes_them():
    objects = ObjectInputs.create(make_net, images())
    net = objects.run_inputs().build_model(None, None)
    assert net[1].in_features == 18 and net[-1].out_features == 4 and net[1].out_features == 16
    seen = {}

    def takes_all(**kwargs):
        seen.update(kwargs)
        return nn.Linear(18, 4)

    ObjectInputs.create(takes_all, images())
    assert seen == {"input_shape": (2, 3, 3), "num_classes": 4}
    # a regression: num_classes is the number of target columns, as for a spec's factory
    x = np.zeros((8, 3), np.float32)
    reg = ObjectInputs.create(lambda num_classes: nn.Linear(3, num_classes), (x, x[:, :2]), loss=mse)
    assert reg.run_inputs().build_model(None, None).out_features == 2
    assert ObjectInputs.create(lambda: nn.Linear(18, 4), images()).make_model().out_features == 4


def test_a_factory_that_needs_other_arguments_or_raises_is_a_model_error():
    def needs_depth(input_shape, depth):
        return nn.Linear(18, 4)

    with pytest.raises(ModelError) as err:
        ObjectInputs.create(needs_depth, images())
    text = str(err.value)
    assert "model=test_a_factory_that_needs_other_arguments_or_raises_is_a_model_error." in text
    assert "cannot be called with input_shape=(2, 3, 3)" in text and "'depth'" in text
    assert "functools.partial" in text

    def broken(input_shape, num_classes):
        raise ValueError("no such layer")

    with pytest.raises(ModelError) as err:
        ObjectInputs.create(broken, images())
    text = str(err.value)
    assert "broken raised ValueError: no such layer (called with input_shape=(2, 3, 3), " \
           "num_classes=4)" in text
    assert isinstance(err.value.__cause__, ValueError)


def test_a_module_class_is_refused_with_the_instance_to_pass():
    with pytest.raises(ModelError) as err:
        ObjectInputs.create(nn.Linear, images())
    text = str(err.value)
    assert text.startswith("model=Linear is a class, not a module instance")
    assert "'in_features'" in text and "model=lambda: Linear(...)" in text


class Locked(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(18, 4)
        self.lock = threading.Lock()

    def forward(self, x):
        return self.fc(x.flatten(1))


def test_a_module_that_cannot_be_copied_says_why_it_must_be():
    with pytest.raises(ModelError) as err:
        ObjectInputs.create(Locked(), images())
    text = str(err.value)
    assert "model=Locked cannot be copied (TypeError: cannot pickle '_thread.lock' object)" in text
    assert "every run starts from its own copy" in text and "model=lambda: Locked(...)" in text
    # the fix it names works: a factory builds a fresh one per run instead of copying
    assert isinstance(ObjectInputs.create(Locked, images()).make_model(), Locked)


def test_a_loss_class_is_refused_with_the_instance_to_pass():
    with pytest.raises(SpecError) as err:
        ObjectInputs.create(nn.Linear(18, 4), images(), loss=nn.CrossEntropyLoss)
    assert "loss=CrossEntropyLoss is a class, not a loss; pass an instance, " \
           "loss=nn.CrossEntropyLoss()" in str(err.value)
