"""The trainer on the stream pipeline: reproducible, as accurate as memory, errors kept, sweeps."""

from __future__ import annotations

import subprocess
import sys
import sys as _sys
from pathlib import Path

import pytest

from batchlab.data.pipeline import load_data
from batchlab.events import MetricRows, RunStarted
from batchlab.spec import RunConfig, spec_from_dict
from batchlab.train.loop import train_run

_sys.path.insert(0, str(Path(__file__).parents[1] / "data"))
from image_writers import image_count, write_separable_folder  # noqa: E402


def config(root: Path, seed: int = 0, **data) -> RunConfig:
    s = spec_from_dict({
        "data": {"name": "image_folder", "path": str(root), "image_size": 8,
                 "cache_dir": str(root.parent / "cache"), **data},
        "model": {"name": "mlp", "hidden": [16]},
        "train": {"batch_size": 8, "epochs": 4, "lr": 0.05, "threads": 1, "seed": seed},
    })
    return RunConfig(data=s.data, model=s.model, train=s.train)


def run(cfg: RunConfig, **kw):
    events: list = []
    end = train_run(cfg, events.append, **kw)
    rows = [r for e in events if isinstance(e, MetricRows) for r in e.rows]
    losses = [r[2] for r in rows if r[0] == "train_loss"]
    return end, events, losses


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return write_separable_folder(tmp_path_factory.mktemp("stream") / "img", per_class=30)


def test_stream_and_memory_train_to_similar_accuracy(folder):
    memory, _, _ = run(config(folder, pipeline="memory", augment=["flip"]))
    stream, events, _ = run(config(folder, pipeline="stream", workers=2, augment=["flip"]))
    assert memory.status == stream.status == "completed"
    assert events[0].environment["data_pipeline"] == "stream"
    assert memory.summary["n_train"] == stream.summary["n_train"] == 48
    assert memory.summary["final_val_acc"] >= 0.9 and stream.summary["final_val_acc"] >= 0.9
    assert abs(memory.summary["final_val_acc"] - stream.summary["final_val_acc"]) <= 0.1


def test_stream_runs_are_reproducible_per_seed(folder):
    aug = {"pipeline": "stream", "augment": ["crop", "flip"], "crop_padding": 1}
    _, _, a = run(config(folder, **aug))
    _, _, b = run(config(folder, workers=2, **aug))
    _, _, c = run(config(folder, seed=1, **aug))
    assert len(a) == 4 * 6 and a == b  # 6 steps per epoch; workers do not change the numbers
    assert a != c


def test_auto_with_a_small_budget_trains_on_the_stream(folder):
    end, events, _ = run(config(folder), load_data=lambda s: load_data(s, available=1000))
    assert end.status == "completed"
    started = next(e for e in events if isinstance(e, RunStarted))
    assert started.environment["data_pipeline"] == "stream"


def test_a_bad_file_fails_the_run_with_the_memory_paths_message(tmp_path):
    root = write_separable_folder(tmp_path / "img", per_class=6)
    (root / "c0" / "bad.png").write_bytes(b"")
    memory, _, _ = run(config(root, pipeline="memory"))
    assert memory.status == "failed" and "bad.png' could not be read" in memory.error
    for workers in (0, 2):  # found while opening (the statistics' sample) and while batching
        for normalize in (True, False):
            end, _, _ = run(config(root, pipeline="stream", workers=workers, normalize=normalize))
            assert end.status == "failed"
            assert end.error == memory.error


SWEEP = """
name = "streamed"
[data]
name = "image_folder"
path = "{root}"
image_size = 8
pipeline = "stream"
cache = true
workers = 2
cache_dir = "{cache}"
[model]
name = "mlp"
hidden = [8]
[train]
epochs = 2
lr = 0.05
threads = 1
[sweep.grid]
"train.batch_size" = [8, 16]
"train.seed" = [0, 1]
"""


def test_a_cached_sweep_decodes_each_image_once(tmp_path):
    root = write_separable_folder(tmp_path / "img", per_class=10)
    cache = tmp_path / "cache"
    (tmp_path / "s.toml").write_text(SWEEP.format(root=root, cache=cache))
    probe = (
        # the one decoder of every image pipeline, wrapped before any module imports it
        "import sys, runpy, batchlab.data.images as images\n"
        "log = sys.argv[1]\n"
        "def counting(real):\n"
        "    def counted(*a, **k):\n"
        "        with open(log, 'a') as fh:\n"
        "            fh.write('x')\n"
        "        return real(*a, **k)\n"
        "    return counted\n"
        "images.read_image = counting(images.read_image)\n"
        "sys.argv = ['batchlab', *sys.argv[2:]]\n"
        "runpy.run_module('batchlab', run_name='__main__')\n"
    )
    count = tmp_path / "decodes.txt"
    # 4 runs inline, then 4 other runs (3 epochs) in a local pool of 2 processes
    for workers, epochs, listed in (("1", "2", 4), ("2", "3", 8)):
        res = subprocess.run([sys.executable, "-c", probe, str(count), "sweep", tmp_path / "s.toml",
                              "--store", tmp_path / "s.db", "--workers", workers,
                              "--set", f"train.epochs={epochs}"],
                             capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr
        assert res.stdout.count("completed") == listed  # the table lists the experiment's runs
    assert count.read_text() == "x" * image_count(root)  # 8 runs, 2 sweeps: one decode each
    assert len(list((cache / "decoded").glob("*.npy"))) == 1


def test_a_resumed_stream_run_continues_bit_for_bit(folder, tmp_path):
    cfg = config(folder, pipeline="stream", workers=2, augment=["crop", "flip"], crop_padding=1)
    _, _, full = run(cfg)
    ckpt = tmp_path / "run.pt"

    def interrupt_in_third_epoch(e):
        if isinstance(e, MetricRows) and e.step > 2 * 6 + 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_run(cfg, interrupt_in_third_epoch, checkpoint_path=ckpt)
    end, events, rest = run(cfg, checkpoint_path=ckpt)
    resumed = events[0].resumed_from
    assert end.status == "completed" and resumed > 0 and resumed % 6 == 0
    assert rest == full[resumed:]  # the same batches, augmentations and losses after the resume


def test_a_cached_stream_run_trains_on_the_memory_paths_batches(folder):
    """data.cache on the stream: uint8 batches from the cache, augmented as batches with the
    memory path's draws, so (normalize off: the same statistics) the very same losses."""
    same = {"normalize": False, "augment": ["crop", "flip"], "crop_padding": 1, "cache": True}
    memory, _, want = run(config(folder, pipeline="memory", **same))
    stream, events, got = run(config(folder, pipeline="stream", workers=2, **same))
    assert events[0].environment["data_pipeline"] == "stream"
    assert stream.status == "completed" and len(got) == 4 * 6
    assert got == want
    assert stream.summary["final_val_acc"] == memory.summary["final_val_acc"] >= 0.9
