"""The Python API's keywords as a spec (``batchlab.apispec``): grid values as lists of plain
Python values, whatever sequence holds them."""

import collections
import json

import numpy as np
import pytest
import torch

from batchlab.apispec import api_spec, grid_values, plain
from batchlab.errors import SpecError
from batchlab.spec import DataSpec, ModelSpec


def spec(grid=None, **fields):
    return api_spec("t", data=DataSpec(name="memory", path="memory:abc"),
                    model=ModelSpec(name="python:Net"), grid=grid, fields=fields)


def test_numpy_torch_tuples_and_ranges_are_lists_of_python_values():
    assert grid_values("lr", np.logspace(-2, -1, 2)) == [0.01, 0.1]
    sizes = grid_values("batch_size", list(np.array([16, 32])))
    assert sizes == [16, 32] and all(type(b) is int for b in sizes)
    assert grid_values("batch_size", torch.tensor([8, 16])) == [8, 16]
    assert grid_values("batch_size", (8, 16)) == [8, 16]
    assert grid_values("batch_size", range(8, 33, 8)) == [8, 16, 24, 32]
    assert plain({"a": [np.float32(0.5), (np.int64(2),)]}) == {"a": [0.5, (2,)]}
    point = collections.namedtuple("Point", "x y")(1, 2)  # a tuple subclass is left as it is
    assert plain({"p": point}) == {"p": point}


def test_float32_values_are_the_decimals_written_not_their_binary_expansion():
    # torch.logspace (float32 by default) gave LRs 0.0010000000474974513, ...: labels, run ids
    # and the next spec's TOML that a later grid of [0.001, 0.01] never matched
    assert grid_values("lr", torch.logspace(-3, -1, 3)) == [0.001, 0.01, 0.1]
    assert grid_values("lr", np.array([3e-4, 0.1], dtype=np.float32)) == [0.0003, 0.1]
    assert grid_values("lr", [np.float32(0.1), np.float16(0.5)]) == [0.1, 0.5]
    assert plain(np.float32(0.1)) == 0.1 and type(plain(np.float32(0.1))) is float
    assert spec(lr=np.float32(0.05)).train.lr == 0.05


def test_a_spec_of_numpy_values_validates_and_writes_json():
    s = spec(grid={"lr": np.array([0.1, 0.01]), "batch_size": list(np.array([16, 32]))},
             epochs=np.int64(2))
    assert s.sweep.grid == {"train.lr": [0.1, 0.01], "train.batch_size": [16, 32]}
    assert s.train.epochs == 2
    json.dumps(s.model_dump(mode="json"))  # the stored spec: no numpy type left


@pytest.mark.parametrize("grid, words", [
    ([16, 32], "grid=[16, 32] is a list; pass a dict of spec field -> list of values, "
               "e.g. grid={'batch_size': [16, 32], 'lr': [0.1, 0.01]}."),
    ({"batch_size": 16}, "grid['batch_size'] = 16 must be a list of values, "
                         "e.g. grid={'batch_size': [16]}."),
    ({"batch_size": np.int64(16)}, "grid['batch_size'] = 16 is a single value"),
    ({"batch_size": {16, 32}}, "grid['batch_size'] is a set; pass a list of values instead: "
                               "list(...) of it, or sorted(...) of a set"),
    ({3: [16]}, "grid key 3 is not a string; grid keys are spec field names as strings"),
])
def test_a_grid_of_the_wrong_shape_says_what_to_write(grid, words):
    with pytest.raises(SpecError) as err:
        spec(grid=grid)
    assert words in str(err.value)


@pytest.mark.parametrize("grid, fields", [
    ({"model.dropout": [0.1, 0.5]}, {}),
    ({"model.hidden": [[8], [16]]}, {}),
    (None, {"model.freeze": "backbone"}),
])
def test_model_settings_are_refused_for_a_model_passed_as_an_object(grid, fields):
    # they were accepted and read by nothing: two runs of a dropout grid trained the same
    # model under two run ids, shown as two configurations
    with pytest.raises(SpecError) as err:
        spec(grid=grid, **fields)
    path = next(iter(grid or fields))
    assert f"'{path}' sets {path}, a setting of batchlab's own models" in str(err.value)
    assert "model=Net(dropout=p)" in str(err.value)


@pytest.mark.parametrize("kw", [dict(weight_decay=0.1), dict(momentum=0.9),
                                dict(grid={"optimizer": ["adam", "sgd"]}),
                                dict(grid={"train.weight_decay": [0, 1e-4]})])
def test_optimizer_settings_beside_an_optimizer_function_are_refused(tmp_path, kw):
    # the function never reads them: weight_decay=0.1 trained without weight decay, stored
    # as if with it, and a grid over it trained the same run twice under two ids
    import batchlab as bl

    x = np.zeros((40, 3), np.float32)
    with pytest.raises(SpecError) as err:
        bl.sweep("t", model=torch.nn.Linear(3, 2), train=(x, np.arange(40) % 2),
                 optimizer=lambda params, lr: torch.optim.Adam(params, lr=lr),
                 store=tmp_path / "s.db", epochs=1, verbose=False, **kw)
    assert "configure batchlab's named optimizers, but optimizer= is your function" in str(err.value)
    assert not (tmp_path / "s.db").exists()


@pytest.mark.parametrize("kw", [dict(val_fraction=0.5), dict(grid={"data.val_fraction": [0.1, 0.3]})])
def test_val_fraction_beside_val_is_refused(tmp_path, kw):
    # nothing is held out when val= is given: the runs trained on the same split, stored (and
    # labelled "val_fraction=0.5") as other data
    import batchlab as bl

    x, y = np.zeros((40, 3), np.float32), np.arange(40) % 2
    with pytest.raises(SpecError, match="'val_fraction'|'data.val_fraction'") as err:
        bl.sweep("t", model=torch.nn.Linear(3, 2), train=(x, y), val=(x[:8], y[:8]),
                 store=tmp_path / "s.db", epochs=1, verbose=False, **kw)
    assert "with val= nothing is held out" in str(err.value)
    with pytest.raises(SpecError, match="with val= nothing is held out"):  # the probes too
        bl.throughput(model=torch.nn.Linear(3, 2), train=(x, y), val=(x[:8], y[:8]), val_fraction=0.5)
    bl.sweep("t", model=torch.nn.Linear(3, 2), train=(x, y), val_fraction=0.5, batch_size=8,  # a split
             store=tmp_path / "s.db", epochs=1, verbose=False)


def test_a_keyword_inside_what_the_grid_replaces_is_refused():
    # the warm-up of every run of a schedule grid was 0, without a word
    with pytest.raises(SpecError) as err:
        spec(grid={"schedule": ["cosine", "constant"]}, **{"train.schedule.warmup": 5})
    assert ("keyword 'train.schedule.warmup' sets train.schedule.warmup, but grid key 'schedule' "
            "sets the whole train.schedule of every run, which replaces it; put 'warmup' in each "
            "of the grid's values instead, e.g. grid={'schedule': [{'name': 'cosine', 'warmup': "
            "...}, ...]}") in str(err.value)
    # a keyword beside a grid inside it, or of the grid's own field (its default), still works
    assert spec(grid={"train.schedule.warmup": [0, 5]}, schedule="cosine").train.schedule.name == "cosine"
    assert spec(grid={"lr": [0.1, 0.01]}, lr=0.5).sweep.grid == {"train.lr": [0.1, 0.01]}
