"""The cached stream path (data.cache = true): uint8 batches from the decoded cache, augmented
as batches, the same samples as the memory path."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from image_writers import write_separable_folder

from batchlab.data import load_dataset
from batchlab.data.batches import StreamBatches, batch_source
from batchlab.data.cached import CachedBatches
from batchlab.data.stream import open_stream
from batchlab.spec import DataSpec

CPU = torch.device("cpu")
AUGMENT = {"augment": ["crop", "flip", "resized_crop"], "crop_padding": 2}


def spec(root: Path, **fields) -> DataSpec:
    return DataSpec(**{"name": "image_folder", "path": str(root), "image_size": 8,
                       "pipeline": "stream", "cache": True,
                       "cache_dir": str(root.parent / "cache"), **fields})


def source(data, s: DataSpec, seed: int = 0, batch: int = 10):
    return batch_source(data, s, batch, CPU, seed, lambda n, v: min(n, 8))


def epoch(src, seed: int, limit: int = 10**9) -> list[tuple[torch.Tensor, torch.Tensor]]:
    order = torch.Generator().manual_seed(seed)
    return [(x.clone(), y.clone()) for x, y in src.epoch(order, limit=limit)]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return write_separable_folder(tmp_path_factory.mktemp("cached") / "img")


def test_cached_stream_batches_are_the_memory_paths_bit_for_bit(folder):
    """Same split, order, augmentation draws and (normalize off) pixels: identical batches."""
    s = spec(folder, normalize=False, **AUGMENT)
    memory, stream = load_dataset(s), open_stream(s)
    src = source(stream, s)
    assert isinstance(src, CachedBatches) and src.kind == "stream"
    for seed in (0, 5):
        got, want = epoch(src, seed), epoch(source(memory, s), seed)
        assert len(got) == len(want) == 4  # 48 images, 20 % held out: 38 in batches of 10
        for (x, y), (u, v) in zip(got, want, strict=True):
            assert x.dtype == torch.float32 and x.is_contiguous()
            assert torch.equal(x, u) and torch.equal(y, v)
    assert not torch.equal(epoch(src, 0)[0][0], epoch(src, 5)[0][0])


def test_each_training_sample_once_per_epoch_with_its_uint8_pixels(folder):
    s = spec(folder, normalize=False)
    memory, stream = load_dataset(s), open_stream(s)
    batches = epoch(source(stream, s, batch=7), seed=3)
    assert [len(y) for _, y in batches] == [7] * 5 + [3]  # the short last batch is kept
    x = torch.cat([b[0] for b in batches])
    y = torch.cat([b[1] for b in batches])
    pixels = (x * 255).round().to(torch.uint8)  # back to the cache's uint8 values, exactly
    assert torch.equal(pixels.float() / 255, x)
    want = (memory.train_x * 255).round().to(torch.uint8)
    # a permutation of the training set: every sample once, with its own label
    match = [int(torch.nonzero((want == p).flatten(1).all(1))[0]) for p in pixels]
    assert sorted(match) == list(range(len(want)))
    assert torch.equal(y, memory.train_y[match])
    assert len(epoch(source(stream, s, batch=7), seed=3, limit=2)) == 2  # limit: batches


def test_normalised_cached_batches_match_the_per_sample_stream(folder):
    """With normalisation, the statistics are the stream's own (a bounded sample), so compare
    with the per-sample stream path on the same statistics: evaluation batches are equal."""
    s = spec(folder, **AUGMENT)
    cached = source(open_stream(s), s)
    plain_spec = s.model_copy(update={"cache": False})
    plain = source(open_stream(plain_spec), plain_spec)
    assert isinstance(cached, CachedBatches) and isinstance(plain, StreamBatches)
    for a, b in ((cached.val_batches(5), plain.val_batches(5)),
                 (cached.train_eval_batches(3), plain.train_eval_batches(3))):
        pairs = list(zip(a, b, strict=True))
        assert pairs
        for (x, y), (u, v) in pairs:
            assert torch.equal(x, u) and torch.equal(y, v)
    # training batches: the same samples in the same order, each augmented from its own draw
    for (x, y), (_, v) in zip(epoch(cached, 1), epoch(plain, 1), strict=True):
        assert torch.equal(y, v) and x.shape == (len(y), 3, 8, 8)


def test_an_unwritable_cache_streams_per_sample(folder, tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    s = spec(folder, cache_dir=str(blocked))
    data = open_stream(s)
    assert any("could not be written" in note for note in data.notes)
    assert isinstance(source(data, s), StreamBatches)


def test_a_minimum_batch_cuts_every_source_alike(folder):
    """min_batch (BatchNorm's 2): the cached and the per-sample stream move the same example
    into a last batch of one as the memory path, bit for bit (38 training images in batches of
    37: 36 and 2 instead of 37 and 1)."""
    s = spec(folder, normalize=False)
    memory, stream = load_dataset(s), open_stream(s)

    def cut(data, s):
        src = batch_source(data, s, 37, CPU, 0, lambda n, v: min(n, 8), min_batch=2)
        return epoch(src, seed=3)

    want = cut(memory, s)
    assert [len(y) for _, y in want] == [36, 2]
    per_sample = spec(folder, normalize=False, cache=False)
    for got in (cut(stream, s), cut(open_stream(per_sample), per_sample)):
        assert [len(y) for _, y in got] == [36, 2]
        for (x, y), (u, v) in zip(got, want, strict=True):
            assert torch.equal(y, v)
            torch.testing.assert_close(x, u, atol=1e-6, rtol=0)
