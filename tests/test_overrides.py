"""Dotted-path edits of a raw spec: the CLI's --set overrides."""

import pytest

from batchlab.errors import SpecError
from batchlab.overrides import apply_overrides, parse_value
from batchlab.spec import spec_from_dict


def test_overrides_parse_types_and_nested_paths():
    raw = apply_overrides({}, ["train.lr=0.05", "train.schedule.name=step", "model.hidden=[8, 4]",
                               "train.nesterov=true"])
    s = spec_from_dict(raw)
    assert s.train.lr == 0.05 and s.train.schedule.name == "step"
    assert s.model.hidden == [8, 4] and s.train.nesterov is True
    assert parse_value("abc") == "abc" and parse_value("3") == 3


def test_overrides_address_grid_keys_quoted_or_not():
    raw = {"sweep": {"grid": {"train.batch_size": [16, 32], "train.lr": [0.1]}}}
    quoted = apply_overrides(raw, ['sweep.grid."train.batch_size"=[64]'])
    assert quoted["sweep"]["grid"] == {"train.batch_size": [64], "train.lr": [0.1]}
    assert apply_overrides(raw, ["sweep.grid.train.batch_size=[64]"]) == quoted
    single = apply_overrides(raw, ["sweep.grid.'train.lr'=[0.5, 0.05]"])
    assert spec_from_dict(single).sweep.grid["train.lr"] == [0.5, 0.05]
    assert raw["sweep"]["grid"]["train.batch_size"] == [16, 32]  # the input is not changed
    for bad in ('sweep.grid."train.lr=[1]', 'sweep..grid=[1]', 'sweep.grid."a"b=[1]'):
        with pytest.raises(SpecError, match="override key"):
            apply_overrides(raw, [bad])


def test_bad_override_syntax():
    with pytest.raises(SpecError, match="section.field=value"):
        apply_overrides({}, ["train.lr"])
