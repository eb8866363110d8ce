"""Objects as run inputs: re-initialisation per run and the fingerprints run ids cover."""

import functools

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
