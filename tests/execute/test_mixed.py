"""Runs of one experiment with different models: the model is a differing field everywhere
(issue 21, part 2, item 4)."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits
from torch import nn

import batchlab as bl
from batchlab.execute.mixed import _hidden, section_labels


def digits():
    x, y = load_digits(return_X_y=True)
    return x[:200].astype(np.float32) / 16, y[:200]


def sweep(store, model):
    return bl.sweep("e", model=model, train=digits(), store=store, grid={"batch_size": [32]},
                    epochs=1, lr=0.05, threads=1)


def test_another_model_under_one_name_warns_and_shows_the_model_everywhere(tmp_path):
    store = tmp_path / "s.db"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the first sweep and an identical rerun warn nothing
        sweep(store, nn.Linear(64, 10))
        sweep(store, nn.Linear(64, 10))
    with pytest.warns(UserWarning, match="already has runs with another model") as caught:
        res = sweep(store, nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10)))
    assert len(caught) == 1
    models = [r["model"] for r in res.rows]
    assert len(set(models)) == 2 and all(m.startswith("python:") and "#" in m for m in models)
    conclusions = " ".join(res.analysis.conclusions)
    assert sum(f"model {m}" in conclusions for m in models) == 2  # best and runner-up named apart
    figures = {p.name for p in res.report(tmp_path / "r.html").figures}
    assert sum(name.startswith("curves-") for name in figures) == 2  # one facet per model
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # rerunning the first model adds nothing new: no warning
        again = sweep(store, nn.Linear(64, 10))
    assert sorted(r["model"] for r in again.rows) == sorted(models)  # labels kept


def test_labels_name_the_fields_that_differ():
    a = {"name": "mlp", "hidden": [256, 128], "dropout": None}
    b = {"name": "mlp", "hidden": [64], "dropout": None}
    assert set(section_labels([a, b, a]).values()) == {"mlp hidden=[256, 128]", "mlp hidden=[64]"}
    objects = section_labels([{"name": "python:Net", "kwargs": {"architecture": "ab"}},
                              {"name": "python:Net", "kwargs": {"architecture": "cd"}}])
    assert len(set(objects.values())) == 2
    assert all(v.startswith("python:Net kwargs=#") and len(v) == len("python:Net kwargs=#") + 6
               for v in objects.values())

def test_a_grid_over_a_model_field_already_shows_it():
    a, b = {"name": "mlp", "hidden": [8]}, {"name": "mlp", "hidden": [16]}
    assert not _hidden("model", [{"model.hidden": [8]}, {"model.hidden": [16]}], [a, b])
    assert _hidden("model", [{}, {}], [a, b])
