"""max-batch and recommend over train.devices processes: per-device and global batch."""

import subprocess
import sys

import numpy as np
from torch import nn

from batchlab.probes import max_batch as mb
from batchlab.probes.batch_advice import accumulation_advice, fit_line
from batchlab.probes.max_batch import max_batch
from batchlab.probes.recommend import explain, memory_sentence, predict_times
from batchlab.spec import RunConfig, spec_from_dict

DDP = {"devices": 2, "strategy": "ddp"}


def config(**train):
    s = spec_from_dict({
        "data": {"name": "synthetic", "shape": [12], "classes": 3, "size": 300},
        "model": {"name": "mlp", "hidden": [16]},
        "train": {"threads": 1, "device": "cpu", **train},
    })
    return RunConfig(data=s.data, model=s.model, train=s.train)


def test_max_batch_measures_per_device_and_advises_on_each_process_share(monkeypatch):
    monkeypatch.setattr(mb, "resident_bytes", lambda: None)  # exact accounted peaks
    one = max_batch(config(batch_size=64), max_batch=20, margin=0.0)
    two = max_batch(config(batch_size=64, **DDP), max_batch=20, margin=0.0)
    assert (one.devices, two.devices) == (1, 2)
    assert two.largest == one.largest == 20  # one process's step: the same search
    # max_batch, not memory, stopped the search at 20: 32 per device was never tried
    assert (two.accumulate, two.micro_batch_size) == (None, None)
    assert two.advice.startswith(
        "batch 64 (32 per device over 2 processes) was not tried: the search stopped at 20 per "
        "device, the largest batch allowed (--max, max_batch=), not at a memory limit")
    # where memory stops it at 20 per device, each process's share is split
    assert accumulation_advice(64, 20, True, False, 240, devices=2) == (
        "batch 64 (32 per device over 2 processes) does not fit in one step (at most 20 per "
        "device within the margin); reach it by gradient accumulation: 32 per device = 2 x 16 "
        "with train.accumulate = 2 (or train.micro_batch_size = 16): the update is batch 64's, "
        "memory holds 16 per device at a time.")
    assert fit_line(two, 0.0).startswith(
        "largest batch per device that fits: 20 → global 40 over 2 processes (search ended by: "
        "max_batch); recommended with a 0% margin: 20 per device → global 40 (power of two: 16 "
        "per device → global 32)")
    assert fit_line(one, 0.0).startswith("largest that fits: 20 (search ended by: max_batch)")
    # the training set caps the global batch: 240 examples over 2 processes, 120 each
    capped = max_batch(config(batch_size=64, **DDP), margin=0.0, memory_limit=2**30)
    assert capped.largest == 120 and capped.limited_by == "dataset size"
    assert any("stopped at 120 per device" in n for n in capped.notes)


def test_accumulation_advice_over_devices():
    assert accumulation_advice(64, 40, True, False, 1000, devices=2) == (
        "batch 64 (32 per device over 2 processes) fits in one step (40 per device fit within "
        "the margin): no accumulation needed.")
    assert accumulation_advice(66, 40, True, False, 1000, devices=4).startswith(
        "batch 66 does not split equally over 4 processes (train.devices); use a multiple of 4")


def test_recommend_speaks_of_global_batches_over_devices():
    assert memory_sentence(1024, "memory", devices=2) == (
        "The largest batch per device that fits in memory (with the safety margin) is 512 → "
        "global 1,024 over 2 processes.")
    preds = predict_times([8, 16, 32], [100.0, 200.0, 300.0], 16.0, 32)
    text = "\n".join(explain(preds[1], preds, 16.0, (10.0, 25.0), 0.05, "src", 0, 32, None, 16,
                             "memory", 2))
    assert "is 16 → global 32 over 2 processes" in text
    assert "Batch sizes here are global: each of the 2 processes (train.devices) takes batch / 2" in text


def test_bl_recommend_over_devices_returns_the_global_batch():
    import batchlab as bl

    rng = np.random.default_rng(0)
    x = rng.normal(size=(160, 6)).astype(np.float32)
    rec = bl.recommend(model=nn.Linear(6, 2), train=(x, (x[:, 0] > 0).astype(np.int64)),
                       batch_sizes=[16, 32], noise_steps=20, lr_repeats=1, epochs=1, lr=0.05,
                       threads=1, batch_size=32, **DDP)
    assert rec.devices == 2 and rec.probes["max_batch"]["devices"] == 2
    assert rec.probes["max_batch"]["largest"] == 16  # per device: the largest candidate / 2
    assert any(line.startswith("Batch sizes here are global") for line in rec.explanation)


def test_cli_max_batch_prints_per_device_and_global(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text('[data]\nname = "synthetic"\nshape = [12]\nsize = 300\n'
                    '[model]\nname = "mlp"\nhidden = [16]\n[train]\nbatch_size = 64\n')
    out = subprocess.run([sys.executable, "-m", "batchlab", "max-batch", str(spec), "--max", "20",
                          "--set", "train.devices=2", "--set", "train.strategy=ddp",
                          "--store", str(tmp_path / "s.db")],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    text = " ".join(out.stdout.split())
    assert "largest batch per device that fits: 20 → global 40 over 2 processes" in text
    # --max stopped the search below the per-device share: not tried, no accumulation advised
    assert ("batch 64 (32 per device over 2 processes) was not tried: the search stopped at 20 "
            "per device") in text and "accumulate" not in text
