"""The memory path's batches: gathered many at a time, equal to gathering each one."""

from __future__ import annotations

import pytest
import torch

import batchlab.data.batches as batches
from batchlab.data import load_dataset
from batchlab.spec import DataSpec

CPU = torch.device("cpu")


def per_batch(data, spec: DataSpec, size: int, seed: int, limit: int):
    """The batches as the loop first drew them: one gather per batch, then augmentation."""
    order = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(data.train_y), generator=order)
    out = []
    for i in range(0, min(len(data.train_y), limit * size), size):
        idx = perm[i : i + size]
        xb = data.train_x[idx]
        if spec.augment:
            xb = batches.augment_batch(xb, spec.augment, spec.crop_padding, order)
        out.append((xb, data.train_y[idx]))
    return out


@pytest.mark.parametrize("gather_rows", [None, 48, 7])  # one copy per epoch, several, one per batch
@pytest.mark.parametrize("limit", [10**9, 5])  # the whole epoch, or a run ending mid-epoch
@pytest.mark.parametrize("augment", [[], ["crop", "flip"]])
def test_batches_equal_one_gather_per_batch(monkeypatch, gather_rows, limit, augment):
    spec = DataSpec(name="digits", limit=300, augment=augment, crop_padding=1)
    data = load_dataset(spec)
    size = 16
    if gather_rows is not None:  # the byte budget as a number of rows (64 floats per digit)
        monkeypatch.setattr(batches, "GATHER_BYTES", gather_rows * 64 * 4)
    source = batches.batch_source(data, spec, size, CPU, 0, lambda n, v: 8)
    got = list(source.epoch(torch.Generator().manual_seed(3), limit=limit))
    expected = per_batch(data, spec, size, 3, limit)
    n_train = len(data.train_y)
    assert len(got) == len(expected) == min(limit, -(-n_train // size))
    assert n_train % size != 0  # a partial last batch is part of the comparison
    for (x, y), (u, v) in zip(got, expected, strict=True):
        assert torch.equal(x, u) and torch.equal(y, v)


@pytest.mark.parametrize("gather_rows", [None, 7])  # one copy per epoch, or one per batch
def test_a_minimum_batch_moves_one_example_into_a_last_batch_of_one(monkeypatch, gather_rows):
    """BatchNorm's min_batch 2: the epoch's last batch of 1 takes the batch before's last
    example; every other batch is the plain cut's, and every example is seen once."""
    spec = DataSpec(name="digits", limit=199)
    data = load_dataset(spec)
    n_train = len(data.train_y)
    size = (n_train - 1) // 3
    assert n_train == 3 * size + 1  # a plain cut leaves a last batch of a single example
    if gather_rows is not None:
        monkeypatch.setattr(batches, "GATHER_BYTES", gather_rows * 64 * 4)
    plain = batches.batch_source(data, spec, size, CPU, 0, lambda n, v: 8)
    fixed = batches.batch_source(data, spec, size, CPU, 0, lambda n, v: 8, min_batch=2)
    want = list(plain.epoch(torch.Generator().manual_seed(3), limit=10**9))
    got = list(fixed.epoch(torch.Generator().manual_seed(3), limit=10**9))
    assert [len(y) for _, y in want] == [size, size, size, 1]
    assert [len(y) for _, y in got] == [size, size, size - 1, 2]
    for (x, y), (u, v) in zip(got[:2], want[:2], strict=True):
        assert torch.equal(x, u) and torch.equal(y, v)
    assert torch.equal(torch.cat([x for x, _ in got]), torch.cat([x for x, _ in want]))
    assert torch.equal(torch.cat([y for _, y in got]), torch.cat([y for _, y in want]))
