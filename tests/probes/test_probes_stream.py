"""Every probe on a streamed image folder (``data.pipeline = "stream"``): it gives a result,
draws its batches through the DataLoader path, and decodes only the samples it trains on,
never the whole folder into memory (issue 11, "data beyond memory")."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import batchlab.data.dataset as dataset
import batchlab.data.pipeline as pipeline
import batchlab.data.stream as stream
from batchlab.errors import DataError
from batchlab.execute.inline import InlineExecutor
from batchlab.execute.sweep import run_sweep
from batchlab.probes.lr_range import lr_range_test
from batchlab.probes.lr_search import lr_find
from batchlab.probes.max_batch import max_batch
from batchlab.probes.noise_scale import measure_noise_scale
from batchlab.probes.options import option_speedups
from batchlab.probes.recommend import recommend
from batchlab.probes.throughput import throughput_curve
from batchlab.spec import RunConfig, spec_from_dict
from batchlab.store import Store

sys.path.insert(0, str(Path(__file__).parents[1] / "data"))
from image_writers import write_separable_folder  # noqa: E402

PER_CLASS = 30  # 60 images: 48 train / 12 validation


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return write_separable_folder(tmp_path_factory.mktemp("probestream") / "img",
                                  per_class=PER_CLASS, size=12)


@pytest.fixture(autouse=True)
def no_memory_path(monkeypatch):
    """Fail any test that decodes the folder into memory (``load_dataset``'s image folder)."""
    def forbidden(*args, **kwargs):
        raise AssertionError("the probe decoded the whole image folder into memory")

    monkeypatch.setitem(dataset.LOADERS, "image_folder", forbidden)


@pytest.fixture
def decodes(monkeypatch) -> list[str]:
    """The file of every image decoded per sample (in this process: data.workers = 0)."""
    seen: list[str] = []
    real = stream.read_image
    monkeypatch.setattr(stream, "read_image", lambda path, size: seen.append(path.name) or real(path, size))
    return seen


def spec_dict(root: Path, lr: float | str = 0.05, **data) -> dict:
    return {
        "name": "ps",
        "data": {"name": "image_folder", "path": str(root), "image_size": 8, "pipeline": "stream",
                 "cache_dir": str(root.parent / "cache"), **data},
        "model": {"name": "mlp", "hidden": [16]},
        "train": {"batch_size": 8, "epochs": 2, "lr": lr, "threads": 1},
    }


def config(root: Path, batch_size: int = 8, **data) -> RunConfig:
    raw = spec_dict(root, **data)
    raw["train"]["batch_size"] = batch_size
    s = spec_from_dict(raw)
    return RunConfig(data=s.data, model=s.model, train=s.train)


# --------------------------------------------------------------------------- bounded decoding


def test_range_test_decodes_only_the_batches_it_trains_on(folder, decodes):
    """normalize = false: opening decodes nothing, so every decode is a trained sample."""
    r = lr_range_test(config(folder, batch_size=4, normalize=False), steps=10, end_lr=1.0)
    assert len(r.lrs) == 10 and all(math.isfinite(v) for v in r.losses)
    assert len(decodes) == 10 * 4  # 40 of the 60 images, one batch at a time


def test_max_batch_decodes_one_batch_per_trial_not_the_folder(folder, decodes):
    r = max_batch(config(folder, normalize=False), max_batch=4)
    assert r.largest == 4 and r.limited_by == "max_batch" and r.n_train == 48
    assert [t.batch_size for t in r.trials] == [1, 2, 4]
    # one batch per trial on CPU (measure_batches), of 60, and the warm-up step's (batch 1)
    assert len(decodes) == 1 + 1 + 2 + 4


def test_auto_that_chose_stream_streams_the_probes_too(folder, decodes, monkeypatch):
    monkeypatch.setattr(pipeline, "available_memory", lambda: 1000)  # the folder does not fit
    r = max_batch(config(folder, pipeline="auto", normalize=False), max_batch=2)
    assert r.largest == 2 and len(decodes) == 1 + 1 + 2  # the warm-up, then 1 and 2


def test_throughput_cycles_a_few_decoded_batches(folder, decodes):
    r = throughput_curve(config(folder, normalize=False), batch_sizes=[4, 8], warmup_steps=2,
                         windows=2, window_steps=3)
    assert r.batch_sizes == [4, 8] and all(v > 0 for v in r.samples_per_s)
    assert r.steps_timed == [6, 6]  # 8 steps per batch size in all, on one decoded batch
    assert len(decodes) == 4 + 8
    assert any(n.startswith("streamed data: each batch size decoded 1 batch") for n in r.notes)


def test_the_probes_read_the_decoded_cache_instead_of_decoding(folder, decodes):
    plain = lr_range_test(config(folder, batch_size=4, normalize=False), steps=12)
    decodes.clear()
    cached = lr_range_test(config(folder, batch_size=4, normalize=False, cache=True), steps=12)
    assert decodes == []  # the cache was built once on opening; samples come from its memmap
    assert cached.losses == plain.losses


# --------------------------------------------------------------------------- every probe gives a result


def test_lr_find_on_a_stream_folder(folder):
    two = config(folder)  # 2 epochs of 6 steps: too short for two 8-step miniatures
    six = two.model_copy(update={"train": two.train.model_copy(update={"epochs": 6})})
    r = lr_find(six, steps=30)
    assert r.strategy == "horizon" and r.suggested_lr is not None and r.suggested_lr > 0
    assert len(r.per_batch[0].trials) >= 4 and r.per_batch[0].cost_steps <= 36
    assert r.per_batch[0].trials[-1].val_acc >= 0  # evaluated on the streamed validation set


def test_the_same_seed_gives_the_same_curve_with_any_number_of_loader_processes(folder):
    augment = {"augment": ["crop", "flip"], "crop_padding": 1}
    a = lr_range_test(config(folder, **augment), steps=12)
    b = lr_range_test(config(folder, workers=2, **augment), steps=12)
    c = lr_range_test(config(folder, **augment), steps=12, seed=1)
    assert a.losses == b.losses
    assert a.losses != c.losses


def test_noise_scale_on_a_stream_folder(folder, decodes):
    r = measure_noise_scale(config(folder, normalize=False), steps=10)
    assert r.steps == list(range(1, 11)) and math.isfinite(r.b_simple_ema)
    assert len(decodes) == 10 * 8


def test_options_on_a_stream_folder(folder):
    r = option_speedups(config(folder), warmup_steps=1, windows=1, window_seconds=0.01,
                         max_seconds=0)
    assert r.labels[0] == "fp32" and r.samples_per_s[0] is not None and r.samples_per_s[0] > 0


def test_options_raise_a_bad_file_instead_of_skipping_every_variant(folder, monkeypatch):
    def unreadable(path, size):
        raise DataError(f"file '{path}' could not be read")

    monkeypatch.setattr(stream, "read_image", unreadable)
    with pytest.raises(DataError, match="could not be read"):
        option_speedups(config(folder, normalize=False), warmup_steps=1, windows=1)


def test_recommend_on_a_stream_folder(folder):
    rec = recommend(config(folder), batch_sizes=[4, 8], noise_steps=10, lr_repeats=1)
    assert rec.batch_size in (4, 8) and rec.lr > 0
    assert set(rec.probes) == {"throughput", "max_batch", "noise_scale", "lr_range"}


def test_a_sweep_with_lr_auto_on_a_stream_folder(folder, tmp_path):
    spec = spec_from_dict({**spec_dict(folder, lr="auto"), "sweep": {"grid": {"train.seed": [0]}}})
    with Store(tmp_path / "s.db") as store:
        out = run_sweep(spec, store, InlineExecutor(threads=1))
        probe = store.probes("ps", "lr_range")[0]
    assert [r.status for r in out.records] == ["completed"]
    assert out.records[0].environment["data_pipeline"] == "stream"
    lr = out.records[0].config["train"]["lr"]
    assert isinstance(lr, float) and lr == float(f"{probe.result['suggested_lr']:.3g}")


# --------------------------------------------------------------------------- the CLI


def test_cli_probes_stream_and_a_bad_file_exits_2(folder, tmp_path):
    """As a user runs them: throughput says it streamed; a file Pillow cannot read, found by a
    loader process, is the memory path's one-paragraph error with exit code 2."""

    bad = shutil.copytree(folder, tmp_path / "bad")
    (bad / "c0" / "zz_bad.png").write_bytes(b"")
    spec = tmp_path / "s.toml"
    spec.write_text(f"""name = "ps"
[data]
name = "image_folder"
path = "{folder}"
image_size = 8
pipeline = "stream"
normalize = false
cache_dir = "{tmp_path / 'cache'}"
[model]
name = "mlp"
hidden = [8]
[train]
batch_size = 8
threads = 1
""")

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "batchlab", *args, str(spec), "--store",
                               str(tmp_path / "s.db")], capture_output=True, text=True, timeout=300)

    ok = cli("throughput", "--batch-sizes", "4,8")
    assert ok.returncode == 0, ok.stderr
    assert "streamed data: each batch size decoded 1 batch" in " ".join(ok.stdout.split())
    # lr-find trains and evaluates: it reaches the file in the training or the validation part
    failed = cli("lr-find", "--set", f"data.path={bad}", "--set", "data.workers=2")
    assert failed.returncode == 2
    out = " ".join((failed.stdout + failed.stderr).split())
    assert "zz_bad.png' could not be read" in out and "replace it with a valid image" in out
    assert "Traceback" not in out
