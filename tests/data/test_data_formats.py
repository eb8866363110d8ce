"""One suite, run against every format (the ``case`` fixture in conftest.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from data_writers import Case

from batchlab.data import Dataset, load_dataset
from batchlab.errors import DataError
from batchlab.spec import DataSpec


def load(case: Case, **fields: object) -> Dataset:
    return load_dataset(DataSpec(**{**case.spec, **fields}))


def channel_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    dims = (0, *range(2, x.dim()))
    return x.mean(dim=dims), x.std(dim=dims, correction=0)


def test_shapes_dtypes_labels_and_split_sizes(case: Case) -> None:
    ds = load(case, val_fraction=0.25)
    n_val = math.ceil(case.total * 0.25)
    assert ds.input_shape == case.input_shape
    assert ds.num_classes == case.num_classes
    assert ds.train_x.shape == (case.total - n_val, *case.input_shape)
    assert ds.val_x.shape == (n_val, *case.input_shape)
    assert ds.train_x.dtype == ds.val_x.dtype == torch.float32
    assert ds.train_y.dtype == ds.val_y.dtype == torch.int64
    assert ds.train_y.shape == (case.total - n_val,) and ds.val_y.shape == (n_val,)
    labels = torch.cat([ds.train_y, ds.val_y])
    assert 0 <= labels.min() and labels.max() < case.num_classes
    assert f"{case.total - n_val} train / {n_val} validation" in ds.description
    assert f"{case.num_classes} classes" in ds.description


def test_same_spec_gives_identical_tensors(case: Case) -> None:
    a, b = load(case), load(case)
    for name in ("train_x", "train_y", "val_x", "val_y"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name


def test_split_seed_changes_the_hold_out(case: Case) -> None:
    a, b = load(case, normalize=False), load(case, normalize=False, split_seed=7)
    assert not torch.equal(a.val_x, b.val_x)


def test_normalisation_uses_training_statistics(case: Case) -> None:
    ds = load(case)
    mean, std = channel_stats(ds.train_x)
    assert torch.allclose(mean, torch.zeros_like(mean), atol=1e-4)
    assert torch.allclose(std, torch.ones_like(std), atol=1e-3)
    # the validation part is shifted/scaled with the *training* statistics, not its own
    raw = load(case, normalize=False)
    raw_mean, raw_std = channel_stats(raw.train_x)
    shape = (1, -1, *[1] * (raw.val_x.dim() - 2))
    expected_val = (raw.val_x - raw_mean.view(shape)) / raw_std.view(shape)
    assert torch.allclose(ds.val_x, expected_val, atol=1e-4)


def test_limit_keeps_a_nested_random_subset_of_train(case: Case) -> None:
    full, five, ten = load(case), load(case, limit=5), load(case, limit=10)
    assert len(five.train_y) == 5 and len(ten.train_y) == 10
    assert torch.equal(five.val_y, full.val_y)  # the limit never touches validation
    unnormalised = [load(case, limit=k, normalize=False).train_x for k in (5, 10)]
    assert torch.equal(unnormalised[0], unnormalised[1][:5])


def test_validation_test_uses_the_formats_test_split(case: Case) -> None:
    if case.n_test is None:
        with pytest.raises(DataError, match="has no test split"):
            load(case, validation="test")
        return
    ds = load(case, validation="test", normalize=False)
    assert ds.val_x.shape == (case.n_test, *case.input_shape)
    assert ds.train_x.shape == (case.total, *case.input_shape)
    assert f"{case.total} train / {case.n_test} test" in ds.description
    if case.test is not None:  # the test part comes back in file order, values exact
        test_x, test_y = case.test
        np.testing.assert_allclose(ds.val_x.numpy(), test_x, atol=case.atol)
        np.testing.assert_array_equal(ds.val_y.numpy(), test_y)
