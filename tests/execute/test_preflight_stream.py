"""The sweep's checks on streamed data: they decode a few images, not the folder, and say which
pipeline ``auto`` chose."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from batchlab.data.stream import StreamData
from batchlab.errors import DataError, ModelError
from batchlab.execute.datacache import DataCache
from batchlab.execute.sweep import prepare_sweep
from batchlab.spec import spec_from_dict

sys.path.insert(0, str(Path(__file__).parents[1] / "data"))
from image_writers import write_separable_folder  # noqa: E402


def sweep_spec(root: Path, model: str = "mlp", **data) -> object:
    return spec_from_dict({
        "name": "s",
        "data": {"name": "image_folder", "path": str(root), "image_size": 8,
                 "cache_dir": str(root.parent / "cache"), **data},
        "model": {"name": model, "hidden": [8]} if model == "mlp" else {"name": model},
        "train": {"batch_size": 8, "epochs": 1, "lr": 0.05},
    })


def test_streamed_data_is_checked_without_loading_it(tmp_path):
    root = write_separable_folder(tmp_path / "img")
    cache = DataCache()
    prepared = prepare_sweep(sweep_spec(root, pipeline="stream"), data_cache=cache)
    assert len(prepared.runs) == 1
    assert isinstance(cache.load(prepared.runs[0].config.data), StreamData)


def test_the_sweep_says_what_auto_chose(tmp_path):
    root = write_separable_folder(tmp_path / "img")
    prepared = prepare_sweep(sweep_spec(root), data_cache=DataCache())
    assert any(n.startswith("data.pipeline = 'auto' chose 'memory'") for n in prepared.notes)


def test_a_model_that_does_not_fit_streamed_data_is_refused(tmp_path):
    root = write_separable_folder(tmp_path / "img")
    with pytest.raises(ModelError, match="cnn1d"):
        prepare_sweep(sweep_spec(root, model="cnn1d", pipeline="stream"), data_cache=DataCache())


def test_stream_on_a_memory_only_format_is_refused(tmp_path):
    spec = spec_from_dict({"name": "s", "data": {"name": "digits", "pipeline": "stream"},
                           "model": {"name": "mlp"}, "train": {"epochs": 1}})
    with pytest.raises(DataError, match="reads image folders only; data.name = 'digits'"):
        prepare_sweep(spec, data_cache=DataCache())
