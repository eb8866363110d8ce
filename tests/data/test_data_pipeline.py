"""data.pipeline = auto's choice, the decoded cache (written once, shared, concurrent-safe), run ids."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from image_writers import image_count, write_separable_folder
from PIL import Image

from batchlab.data import Dataset
from batchlab.data.decoded import cache_file, decoded_pixels
from batchlab.data.images import read_image
from batchlab.data.pipeline import AUTO_MEMORY_SHARE, choose_pipeline, decoded_bytes, load_data
from batchlab.data.stream import StreamData, open_stream
from batchlab.errors import DataError
from batchlab.spec import DataSpec, ModelSpec, RunConfig, TrainSpec


def spec(root: Path, **fields) -> DataSpec:
    return DataSpec(**{"name": "image_folder", "path": str(root), "image_size": 8,
                       "cache_dir": str(root.parent / "cache"), **fields})


def test_auto_streams_when_the_decoded_set_exceeds_the_budget(tmp_path):
    s = spec(write_separable_folder(tmp_path / "img"))
    need = decoded_bytes(s)
    assert need == 48 * 3 * 8 * 8 * 4
    roomy = int(need / AUTO_MEMORY_SHARE)
    assert choose_pipeline(s, available=roomy)[0] == "memory"
    pipeline, note = choose_pipeline(s, available=roomy - 1)
    assert pipeline == "stream" and note is not None and "chose 'stream'" in note
    streamed = load_data(s, available=roomy - 1)
    assert isinstance(streamed, StreamData) and streamed.notes == (note,)
    kept = load_data(s, available=roomy)
    assert isinstance(kept, Dataset) and "chose 'memory'" in kept.notes[-1]
    # asked for explicitly, or a format that only loads into memory: no choice, no note
    assert choose_pipeline(s.model_copy(update={"pipeline": "memory"}), available=1) == ("memory", None)
    assert choose_pipeline(DataSpec(name="digits"), available=1) == ("memory", None)


def counting_decodes(monkeypatch) -> list[Path]:
    """Patch the decoders (the tensor decoder for JPEG/PNG, Pillow's open for the rest);
    returns the list of files decoded."""
    import batchlab.data.images as images

    opened: list[Path] = []
    name, decode = images.tensor_decoder()
    counted = None if decode is None else (lambda p: opened.append(p) or decode(p))
    monkeypatch.setattr(images, "tensor_decoder", lambda: (name, counted))
    real = images.Image.open
    monkeypatch.setattr(images.Image, "open", lambda p, *a: opened.append(p) or real(p, *a))
    return opened


def test_cache_is_written_once_and_reused(tmp_path, monkeypatch):
    root = write_separable_folder(tmp_path / "img")
    s = spec(root, pipeline="stream", cache=True, augment=["flip"])
    opened = counting_decodes(monkeypatch)
    first = open_stream(s)
    assert len(opened) == image_count(root) == 48  # each image decoded exactly once
    where = first.train.part.cache
    assert where is not None and where == cache_file(s, "train")
    assert where.parent == tmp_path / "cache" / "decoded" and "-train-8px-" in where.name
    stamp = where.stat().st_mtime_ns
    assert not [p for p in where.parent.iterdir() if ".tmp" in p.name]
    # a second run (a fresh process would do the same): opens, trains an epoch, decodes nothing
    second = open_stream(s)
    from batchlab.data.batches import batch_source

    source = batch_source(second, s, 8, torch.device("cpu"), 0, lambda n, v: 8)
    batches = list(source.epoch(torch.Generator().manual_seed(0), limit=100))
    assert len(batches) == 5 and len(opened) == 48
    assert where.stat().st_mtime_ns == stamp
    # the cached pixels are the decoder's, opened read-only without a copy
    assert isinstance(second.train.pixels(0), np.memmap) or second.train.pixels(0).base is not None
    row = int(second.train.rows[0])
    assert np.array_equal(second.train.pixels(0), read_image(second.train.part.paths[row], 8))
    # another image size or changed content: another file
    assert cache_file(spec(root, image_size=6), "train") != where
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(root / "c0" / "000.png")
    assert cache_file(s, "train") != where


def slow_decode(path: Path, size: int) -> np.ndarray:
    time.sleep(0.01)  # long enough that concurrent builders would overlap without the lock
    with open(f"{path}.decoded-by-{os.getpid()}", "a"):
        pass
    return read_image(path, size)


def build_cache(args: tuple[str, list[str]]) -> int:
    where, paths = args
    pixels = decoded_pixels(Path(where), [Path(p) for p in paths], 8, decode=slow_decode)
    return int(pixels.sum())


def test_concurrent_builders_decode_once_and_read_the_same_file(tmp_path):
    root = write_separable_folder(tmp_path / "img", per_class=10)
    paths = sorted(str(p) for p in root.rglob("*.png")) + sorted(str(p) for p in root.rglob("*.jpg"))
    where = tmp_path / "cache" / "decoded" / "x.npy"
    with multiprocessing.get_context("fork").Pool(3) as pool:
        sums = pool.map(build_cache, [(str(where), paths)] * 3)
    assert len(set(sums)) == 1
    marks = list(root.rglob("*.decoded-by-*"))
    assert len(marks) == len(paths)  # every image decoded once, by one of the three
    assert sorted(p.name for p in where.parent.iterdir()) == [".x.npy.lock", "x.npy"]


def test_a_bad_file_leaves_no_cache_behind(tmp_path):
    root = write_separable_folder(tmp_path / "img")
    (root / "c0" / "zzz.png").write_bytes(b"\x89PNG broken")
    s = spec(root, pipeline="stream", cache=True, workers=2)
    with pytest.raises(DataError, match=r"zzz\.png' could not be read .*remove the file or replace"):
        open_stream(s)
    assert not list((tmp_path / "cache" / "decoded").glob("*.npy"))


def test_loading_fields_do_not_change_run_ids():
    base = RunConfig(data=DataSpec(), model=ModelSpec(), train=TrainSpec())
    same = RunConfig(data=DataSpec(workers=3, cache=True, pipeline="auto"), model=ModelSpec(),
                     train=TrainSpec())
    assert base.run_id() == same.run_id()
    streamed = RunConfig(data=DataSpec(pipeline="stream"), model=ModelSpec(), train=TrainSpec())
    assert streamed.run_id() != base.run_id()  # other batches: other numbers, another run


def test_the_memory_pipeline_reads_the_cache_too(tmp_path, monkeypatch):
    from batchlab.data import load_dataset

    root = write_separable_folder(tmp_path / "img")
    plain = load_dataset(spec(root, pipeline="memory"))
    opened = counting_decodes(monkeypatch)
    first = load_dataset(spec(root, pipeline="memory", cache=True))
    assert len(opened) == 48
    second = load_dataset(spec(root, pipeline="memory", cache=True))
    assert len(opened) == 48  # decoded once, by the first load
    for data in (first, second):
        assert torch.equal(data.train_x, plain.train_x) and torch.equal(data.val_x, plain.val_x)
    # the stream pipeline finds the same file
    open_stream(spec(root, pipeline="stream", cache=True))
    assert len(opened) == 48


def test_an_unwritable_cache_folder_only_costs_decoding(tmp_path):
    root = write_separable_folder(tmp_path / "img")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    s = spec(root, pipeline="stream", cache=True, cache_dir=str(blocker))
    data = open_stream(s)
    assert data.train.part.cache is None
    assert len(data.notes) == 1 and data.notes[0].startswith("data.cache: the decoded cache could not")
    assert data.head(2).shape == (2, 3, 8, 8)
