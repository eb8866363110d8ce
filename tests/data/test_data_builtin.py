"""digits, mnist1d (generated locally and cached) and synthetic."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

import batchlab.data.builtin as builtin
from batchlab.data import load_dataset
from batchlab.errors import DataError
from batchlab.spec import DataSpec


def test_digits() -> None:
    ds = load_dataset(DataSpec(name="digits", normalize=False))
    assert ds.description == "digits: 1437 train / 360 validation, 1x8x8, 10 classes"
    assert ds.train_x.shape == (1437, 1, 8, 8) and ds.num_classes == 10
    assert 0 <= ds.train_x.min() and ds.train_x.max() <= 1


def test_digits_has_no_test_split() -> None:
    with pytest.raises(DataError, match=r"'digits' has no test split.*validation = \"split\""):
        load_dataset(DataSpec(name="digits", validation="test"))


def test_mnist1d_generates_once_then_reads_the_cache(tmp_path: Path, monkeypatch) -> None:
    spec = DataSpec(name="mnist1d", size=500, cache_dir=str(tmp_path), validation="test")
    np.random.seed(123)
    random.seed(123)
    np_state, py_state = np.random.get_state(), random.getstate()
    first = load_dataset(spec)
    # make_dataset reseeds the global RNGs; loading must leave the caller's state untouched
    after = np.random.get_state()
    assert after[0] == np_state[0] and np.array_equal(after[1], np_state[1])
    assert after[2:] == np_state[2:] and random.getstate() == py_state

    cache = tmp_path / "mnist1d-n500-seed42.npz"
    assert cache.is_file()
    assert first.train_x.shape == (400, 1, 40) and first.val_x.shape == (100, 1, 40)

    def no_generation(size: int) -> dict:
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(builtin, "_generate_mnist1d", no_generation)
    second = load_dataset(spec)
    assert torch.equal(first.train_x, second.train_x) and torch.equal(first.val_y, second.val_y)


def test_mnist1d_cache_location_and_corrupt_cache(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("BATCHLAB_CACHE", str(tmp_path / "env"))
    spec = DataSpec(name="mnist1d", size=100)
    cache = tmp_path / "env" / "mnist1d-n100-seed42.npz"
    first = load_dataset(spec)
    assert cache.is_file()
    cache.write_bytes(b"corrupt")  # a damaged cache is regenerated, not an error
    assert torch.equal(load_dataset(spec).train_x, first.train_x)
    assert cache.stat().st_size > 100


def test_synthetic_is_deterministic_and_seeded() -> None:
    spec = DataSpec(name="synthetic", shape=[3, 8, 8], classes=5, size=200)
    a, b = load_dataset(spec), load_dataset(spec)
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.val_y, b.val_y)
    assert a.input_shape == (3, 8, 8) and a.num_classes == 5
    labels = torch.cat([a.train_y, a.val_y])
    assert torch.equal(torch.bincount(labels), torch.full((5,), 40))  # balanced classes
    other = load_dataset(spec.model_copy(update={"split_seed": 1}))
    assert not torch.equal(a.train_x, other.train_x)


def test_synthetic_flat_and_signal_shapes() -> None:
    for shape in ([12], [2, 30]):
        ds = load_dataset(DataSpec(name="synthetic", shape=shape, classes=3, size=60))
        assert ds.input_shape == tuple(shape) and ds.train_x.shape[1:] == tuple(shape)
