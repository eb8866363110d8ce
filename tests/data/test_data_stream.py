"""The stream pipeline's data and batches: determinism, equality with the memory path, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from image_writers import write_separable_folder

from batchlab.data import load_dataset
from batchlab.data.batches import MemoryBatches, StreamBatches, batch_source
from batchlab.data.stream import STATS_SAMPLE, StreamData, open_stream
from batchlab.errors import DataError
from batchlab.spec import DataSpec

CPU = torch.device("cpu")


def spec(root: Path, **fields) -> DataSpec:
    return DataSpec(**{"name": "image_folder", "path": str(root), "image_size": 8,
                       "pipeline": "stream", "cache_dir": str(root.parent / "cache"), **fields})


def epoch_batches(data, s: DataSpec, seed: int, batch: int = 10, workers: int = 0):
    source = batch_source(data, s.model_copy(update={"workers": workers}), batch, CPU, seed,
                          lambda n, v: min(n, 8))
    order = torch.Generator().manual_seed(seed)
    return [(x.clone(), y.clone()) for x, y in source.epoch(order, limit=10**9)]


def same(a, b) -> bool:
    return len(a) == len(b) and all(torch.equal(x, u) and torch.equal(y, v)
                                    for (x, y), (u, v) in zip(a, b, strict=True))


def test_same_seed_same_batches_with_any_number_of_workers(tmp_path):
    s = spec(write_separable_folder(tmp_path / "img"), augment=["crop", "flip", "resized_crop"],
             crop_padding=2)
    data = open_stream(s)
    assert isinstance(data, StreamData)
    first = epoch_batches(data, s, seed=3)
    assert len(first) == 4  # 48 images, 20% held out: 38 train in batches of 10
    assert same(first, epoch_batches(data, s, seed=3))
    assert same(first, epoch_batches(data, s, seed=3, workers=2))  # seeds travel with samples
    other = epoch_batches(data, s, seed=4)
    assert not same(first, other)
    assert {int(y) for _, y in first for y in y} == {0, 1}


def test_unaugmented_stream_batches_equal_the_memory_paths(tmp_path):
    """Same split, limit, order and (for a set within STATS_SAMPLE) the same statistics: the
    two pipelines hand the loop the same numbers."""
    s = spec(write_separable_folder(tmp_path / "img"), limit=30)
    memory, stream = load_dataset(s), open_stream(s)
    assert len(stream.train) == len(memory.train_y) == 30 <= STATS_SAMPLE
    assert torch.equal(stream.train_y, memory.train_y) and torch.equal(stream.val_y, memory.val_y)
    for (x, y), (u, v) in zip(epoch_batches(memory, s, 1), epoch_batches(stream, s, 1), strict=True):
        assert torch.equal(y, v)
        torch.testing.assert_close(u, x, atol=1e-5, rtol=1e-5)
    mem_src = batch_source(memory, s, 10, CPU, 0, lambda n, v: 8)
    str_src = batch_source(stream, s, 10, CPU, 0, lambda n, v: 8)
    assert isinstance(mem_src, MemoryBatches) and isinstance(str_src, StreamBatches)
    for a, b in ((mem_src.val_batches(5), str_src.val_batches(5)),
                 (mem_src.train_eval_batches(5), str_src.train_eval_batches(5))):
        for (x, y), (u, v) in zip(a, b, strict=True):
            assert torch.equal(y, v)
            torch.testing.assert_close(u, x, atol=1e-5, rtol=1e-5)


def test_statistics_come_from_a_bounded_sample(tmp_path, monkeypatch):
    import batchlab.data.stream as stream

    root = write_separable_folder(tmp_path / "img", per_class=30)
    s = spec(root, val_fraction=0.1)
    seen: list[int] = []
    real = stream.read_image
    monkeypatch.setattr(stream, "read_image", lambda p, n: seen.append(1) or real(p, n))
    monkeypatch.setattr(stream, "STATS_SAMPLE", 12)
    data = open_stream(s)
    assert len(seen) == 12  # opening decoded the sample only, not the 54 training images
    full = load_dataset(s.model_copy(update={"normalize": False})).train_x
    mean = full.mean(dim=(0, 2, 3))
    assert torch.allclose(data.train.mean.flatten(), mean, atol=0.1)  # a sample's estimate
    assert not torch.equal(data.train.mean.flatten(), mean)


def test_a_bad_file_keeps_the_memory_paths_message(tmp_path):
    root = write_separable_folder(tmp_path / "img")
    (root / "c1" / "broken.jpg").write_bytes(b"not a jpeg at all")
    with pytest.raises(DataError) as memory_err:
        load_dataset(spec(root, pipeline="memory"))
    message = str(memory_err.value)
    assert "broken.jpg" in message and "remove the file or replace it" in message
    with pytest.raises(DataError) as opened:  # the statistics' sample meets it while opening
        open_stream(spec(root))
    assert str(opened.value) == message
    s = spec(root, normalize=False)  # opens without decoding; the batches meet it
    data = open_stream(s)
    for workers in (0, 2):
        with pytest.raises(DataError) as batched:
            epoch_batches(data, s, seed=0, workers=workers)
        assert str(batched.value) == message


def test_stream_reads_image_folders_only(tmp_path):
    with pytest.raises(DataError, match="reads image folders only; data.name = 'npz' is read into memory"):
        open_stream(DataSpec(name="npz", path=str(tmp_path / "x.npz"), pipeline="stream"))


def test_head_and_labels(tmp_path):
    data = open_stream(spec(write_separable_folder(tmp_path / "img")))
    assert data.head(3).shape == (3, 3, 8, 8)
    assert data.input_shape == (3, 8, 8) and data.num_classes == 2
    assert len(data.train_y) + len(data.val_y) == 48
    assert "streamed" in data.description and "38 train / 10 validation" in data.description
