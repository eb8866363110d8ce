"""Spec edge inputs: reversed random ranges, a folder as spec path, --set of exclusive fields."""

import pytest

from batchlab.errors import SpecError
from batchlab.overrides import apply_overrides
from batchlab.spec import load_spec, spec_from_dict


@pytest.mark.parametrize("kind, bounds", [("int_uniform", [64, 8]), ("uniform", [0.1, 0.01]),
                                          ("log_uniform", [0.1, 0.001])])
def test_reversed_random_range_is_refused(kind, bounds):
    raw = {"sweep": {"random": {"count": 2, "params": {"train.batch_size": {kind: bounds}}}}}
    with pytest.raises(SpecError, match=rf"{kind} = \[.*\] is reversed; give \[low, high\]"):
        spec_from_dict(raw)


def test_equal_bounds_are_fine():
    spec = spec_from_dict({"sweep": {"random": {"count": 1, "params": {
        "train.batch_size": {"int_uniform": [8, 8]}}}}})
    assert spec.sweep.random.params["train.batch_size"].int_uniform == (8, 8)


def test_spec_path_that_is_a_folder(tmp_path):
    with pytest.raises(SpecError, match="is a folder, not a file"):
        load_spec(tmp_path)
    with pytest.raises(SpecError, match="does not exist"):
        load_spec(tmp_path / "missing.toml")


def test_set_steps_replaces_epochs_from_the_spec_and_says_so(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text("[train]\nepochs = 7\n")
    notes = []
    spec = load_spec(p, ["train.steps=5"], notes)
    assert spec.train.steps == 5 and spec.train.epochs is None
    assert notes == ["--set train.steps=5 replaces train.epochs from the spec (a run has either "
                     "train.steps or train.epochs; the last one given wins)."]
    # and back again: the last override wins
    raw = apply_overrides({"train": {"steps": 5}}, ["train.steps=9", "train.epochs=3"])
    assert raw == {"train": {"epochs": 3}}
    assert load_spec(p, ["train.steps=5", "train.epochs=2"]).train.epochs == 2


@pytest.mark.parametrize("override", ["train.lr=inf", "train.lr=1e999", "train.weight_decay=inf",
                                      "train.schedule.gamma=inf"])
def test_an_infinite_number_is_refused(tmp_path, override):
    p = tmp_path / "s.toml"
    p.write_text("[train]\nepochs = 1\n")
    field = override.split("=")[0]
    with pytest.raises(SpecError, match=rf"'{field}': .*(finite|positive number)"):
        load_spec(p, [override])


def test_grid_keys_written_without_quotes_are_the_same_field_paths(tmp_path):
    # TOML nests an unquoted dotted key: it was refused ("'sweep.grid.train': Input should be a
    # valid list", "unknown field 'sweep.random.params.train.lr'"), while --set
    # sweep.grid.train.lr=... took it
    p = tmp_path / "s.toml"
    p.write_text('[sweep.grid]\ntrain.lr = [0.1, 0.01]\n"train.batch_size" = [16]\n'
                 'train.schedule.name = ["step", "cosine"]\n')
    grid = load_spec(p).sweep.grid
    assert grid == {"train.lr": [0.1, 0.01], "train.batch_size": [16],
                    "train.schedule.name": ["step", "cosine"]}
    p.write_text('[sweep.grid]\n"train.lr" = [0.1, 0.01]\n"train.batch_size" = [16]\n'
                 '"train.schedule.name" = ["step", "cosine"]\n')
    assert load_spec(p).sweep.grid == grid
    p.write_text('[sweep.random]\ncount = 2\n[sweep.random.params]\n'
                 'train.lr = {log_uniform = [1e-3, 1e-1]}\ntrain.schedule.name = {choice = ["step"]}\n')
    params = load_spec(p).sweep.random.params
    assert params["train.lr"].log_uniform == (1e-3, 1e-1)
    assert params["train.schedule.name"].choice == ["step"]


@pytest.mark.parametrize("name", ["", 'name = "mnist1d"\n', 'name = "synthetic"\n'])
def test_a_data_path_for_a_built_in_data_set_is_refused(tmp_path, name):
    # [data] path = "mydata.npz" without name = "npz" trained on digits, the default, silently
    p = tmp_path / "s.toml"
    p.write_text(f'[data]\n{name}path = "mydata.npz"\n')
    with pytest.raises(SpecError, match=r"data.path = 'mydata.npz' is set, but data.name = '\w+' "
                       r"is a built-in data set that reads no file; set data.name to the file's "
                       r"format \(npz, "):
        load_spec(p)


def test_a_spec_saved_with_a_byte_order_mark_or_in_utf16_is_read_or_named(tmp_path):
    # Notepad's BOM read as "not valid TOML: Invalid statement (at line 1, column 1)"
    p = tmp_path / "s.toml"
    p.write_bytes("\ufeff[train]\r\nepochs = 3\r\n".encode())
    assert load_spec(p).train.epochs == 3
    p.write_bytes("[train]\nepochs = 3\n".encode("utf-16"))
    with pytest.raises(SpecError, match=r"is not UTF-8 text \(.*\); save it as UTF-8"):
        load_spec(p)
