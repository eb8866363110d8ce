"""Objects as run inputs: re-initialisation per run and the fingerprints run ids cover."""

import functools
import importlib.util
import sys

import numpy as np
import torch
from torch import nn

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
    objects = ObjectInputs.create(template, (np.zeros((8, 3), np.float32), np.zeros(8, np.int64)))
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
