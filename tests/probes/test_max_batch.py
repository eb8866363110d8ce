"""max_batch: the search, OOM recognition, caps, the margin rule, and no side effects."""

import json

import pytest
import torch
from torch import nn

from batchlab.models import build_model
from batchlab.probes import max_batch as mb
from batchlab.probes.common import ProbeError, fresh_setup
from batchlab.probes.max_batch import (
    CPU_CAP,
    HOST_FRACTION,
    max_batch,
)
from batchlab.probes.memory import step_memory
from batchlab.spec import RunConfig, spec_from_dict
from batchlab.store import Store

N_TRAIN = 240  # synthetic size 300, 20% held out


class FailAbove(nn.Module):
    """A linear model whose forward raises ``error`` on batches larger than ``limit``."""

    def __init__(self, input_shape, num_classes, limit=50, error="oom"):
        super().__init__()
        self.fc = nn.Linear(input_shape[0], num_classes)
        self.limit, self.error = limit, error

    def forward(self, x):
        if len(x) > self.limit:
            if self.error == "oom":
                raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: "
                                   "can't allocate memory: you tried to allocate 987654321 bytes.")
            if self.error == "cuda_oom":
                torch.empty(2**50, device=x.device)  # a real CUDA out-of-memory error
            raise ValueError(f"bad batch of {len(x)}")
        return self.fc(x)


def config(model=None, device="cpu", **train):
    s = spec_from_dict({
        "data": {"name": "synthetic", "shape": [12], "classes": 3, "size": 300},
        "model": model or {"name": "mlp", "hidden": [16]},
        "train": {"threads": 1, "device": device, **train},
    })
    return RunConfig(data=s.data, model=s.model, train=s.train)


def fake(limit, error="oom"):
    return {"name": f"{__name__}:FailAbove", "kwargs": {"limit": limit, "error": error}}


@pytest.fixture
def accounting_only(monkeypatch):
    """CPU peaks from the step's accounting alone (exact, a + b * B): no reading of the
    process's resident memory, whose noise would blur the exact checks below."""
    monkeypatch.setattr(mb, "resident_bytes", lambda: None)


def tried(result):
    return [t.batch_size for t in result.trials]


def linear_peak(cfg):
    """(a, b) with the accounted step peak exactly a + b * B, checked at B = 37."""
    peak = {b: step_memory(fresh_setup(cfg), b).bytes for b in (1, 2, 37)}
    a, b = 2 * peak[1] - peak[2], peak[2] - peak[1]
    assert peak[37] == a + 37 * b
    return a, b


def test_finds_the_batch_a_memory_limit_allows_and_applies_the_margin(accounting_only):
    cfg = config()
    a, b = linear_peak(cfg)
    limit = a + 37 * b + b // 2  # 37 fits, 38 does not
    r = max_batch(cfg, memory_limit=limit, margin=0.1)
    assert r.largest == 37 and r.limited_by == "memory"
    threshold = int(0.9 * limit)
    expected = (threshold - a) // b
    assert r.threshold_bytes == threshold and r.recommended == expected < 37
    assert r.recommended_pow2 == 1 << (expected.bit_length() - 1)
    by_size = {t.batch_size: t for t in r.trials}
    assert by_size[37].fits and not by_size[38].fits and "over the memory limit" in by_size[38].reason
    assert by_size[expected].fits and not by_size[expected + 1].peak_bytes <= threshold
    assert all(t.peak_bytes == a + b * t.batch_size for t in r.trials)
    assert max(tried(r)) == 64 and len(tried(r)) == len(set(tried(r)))  # doubling stopped at 64
    assert r.method == "cpu_accounting" and r.limit_source == "memory_limit"


def test_an_unresolved_auto_lr_does_not_block_the_probe():
    assert max_batch(config(lr="auto"), max_batch=8).largest == 8


def test_zero_margin_recommends_the_largest(accounting_only):
    r = max_batch(config(), memory_limit=10**7, margin=0.0)
    assert r.recommended == r.largest


def test_an_allocator_failure_is_found_as_the_boundary():
    r = max_batch(config(fake(50)))
    assert r.largest == 50 and r.limited_by == "memory"
    failed = [t for t in r.trials if not t.fits]
    assert failed and all(t.peak_bytes is None and t.reason.startswith("out of memory") for t in failed)
    assert min(t.batch_size for t in failed) == 51


def test_a_start_that_does_not_fit_searches_below_it():
    r = max_batch(config(fake(5)), start=16)
    assert r.largest == 5 and tried(r)[0] == 16


@pytest.mark.parametrize(("limit", "failing"), [(0, 1), (8, 16)])
def test_other_errors_are_not_swallowed(limit, failing):
    with pytest.raises(ProbeError, match=f"at batch size {failing} failed with ValueError") as info:
        max_batch(config(fake(limit, error="value")))
    assert isinstance(info.value.__cause__, ValueError)
    assert "bad batch of" in str(info.value) and "not an out-of-memory error" in str(info.value)


def test_stops_at_the_dataset_size():
    r = max_batch(config())
    assert r.largest == N_TRAIN == r.n_train and r.limited_by == "dataset size"
    assert max(tried(r)) == N_TRAIN and "training set size" in r.notes[0]


def test_stops_at_max():
    r = max_batch(config(), max_batch=20)
    assert r.largest == 20 and r.limited_by == "max_batch" and max(tried(r)) == 20


def test_cpu_without_a_limit_never_tries_more_than_the_cap(monkeypatch):
    assert CPU_CAP == 2**16
    monkeypatch.setattr(mb, "CPU_CAP", 64)
    r = max_batch(config())
    assert r.largest == 64 and r.limited_by == "cpu cap" and max(tried(r)) == 64
    # with a memory limit the limit bounds the search instead
    assert max_batch(config(), memory_limit=10**9).limited_by == "dataset size"


def test_cpu_trials_predicted_beyond_host_memory_are_not_run(monkeypatch, accounting_only):
    cfg = config()
    a, b = linear_peak(cfg)
    host = int((a + 37 * b + b // 2) / HOST_FRACTION)  # 37 is predicted to fit, 38 not
    monkeypatch.setattr(mb, "mem_available", lambda: host)
    r = max_batch(cfg)
    share = int(HOST_FRACTION * host)  # the margin is kept inside the host's share
    assert r.largest == 37 and r.limited_by == "memory"
    assert r.recommended == (int(0.9 * share) - a) // b < 37
    assert r.limit_bytes == share and r.limit_source == "80% of the available host memory (MemAvailable)"
    skipped = [t for t in r.trials if not t.fits]
    assert {t.batch_size for t in skipped} >= {38, 64}
    assert all(t.reason.startswith("not run: predicted") and t.peak_bytes is None for t in skipped)


def test_cpu_peaks_count_what_the_process_really_holds(monkeypatch):
    """The issue's case in small: the accounting says 37 fit in 80% of the host, but the
    process's resident memory rises above it (temporaries, kernel scratch, allocator slack):
    by 25%, and from batch 12 on (another kernel, say) by 200%. Injected readings: the process
    holds ``base`` when the probe starts, and its resident peak in a step is base + that."""
    cfg = config()
    a, b = linear_peak(cfg)
    host = int((a + 37 * b + b // 2) / HOST_FRACTION)  # the accounting alone: 37 fits
    base = 3 * 2**30
    monkeypatch.setattr(mb, "mem_available", lambda: host)
    monkeypatch.setattr(mb, "resident_bytes", lambda: base)
    step = mb._fresh_step_memory

    def real(batch):
        return int((1.25 if batch < 12 else 3.0) * (a + b * batch))

    def really(config, data, batch_size, *args, **kwargs):
        measure = step(config, data, batch_size, *args, **kwargs)
        measure.detail["rss_peak"] = base + real(batch_size)
        return measure

    monkeypatch.setattr(mb, "_fresh_step_memory", really)
    r = max_batch(cfg)
    share = int(HOST_FRACTION * host)
    largest = max(B for B in range(1, 38) if real(B) <= share)
    assert r.largest == largest < 12 and r.limited_by == "memory"
    assert all(t.peak_bytes == real(t.batch_size) for t in r.trials if t.peak_bytes is not None)
    by_size = {t.batch_size: t for t in r.trials}
    assert not by_size[16].fits and by_size[16].reason.startswith("over 80% of the ")
    assert real(r.recommended) <= int(0.9 * share) < real(r.recommended + 1)  # margin in the share
    assert any("what the process really took" in n for n in r.notes)


def test_host_budget_takes_the_larger_of_accounting_and_resident_growth():
    from batchlab.probes.host import HostBudget

    budget = HostBudget(available=1000, base=500)
    assert budget.share == 800
    assert budget.used(100, 650) == 150 and budget.used(100, 550) == 100
    assert budget.used(100, None) == 100 and HostBudget(1000, None).used(100, 900) == 100


def test_a_limit_below_one_sample_says_what_to_try():
    with pytest.raises(ProbeError, match="not even batch size 1 fits.*smaller model.*larger memory limit"):
        max_batch(config(), memory_limit=1000)
    with pytest.raises(ProbeError, match="not even batch size 1 fits: out of memory"):
        max_batch(config(fake(0)))


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"margin": 1.0}, "margin"), ({"margin": -0.1}, "margin"), ({"memory_limit": 0}, "memory_limit"),
    ({"max_batch": 0}, "max_batch"), ({"start": 0}, "start"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ProbeError, match=match):
        max_batch(config(), **kwargs)


def test_leaves_the_callers_model_and_the_rng_untouched():
    cfg = config()
    torch.manual_seed(3)
    model = build_model(cfg.model, (12,), 3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    r = max_batch(cfg, model=model, max_batch=16)
    assert r.largest == 16
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(rng, torch.get_rng_state())


def test_result_is_json_and_storable(tmp_path):
    cfg = config()
    result = max_batch(cfg, memory_limit=10**6).to_dict()
    assert json.loads(json.dumps(result)) == result
    assert set(result["trials"][0]) == {"batch_size", "peak_bytes", "fits", "reason"}
    with Store(tmp_path / "s.db") as store:
        store.add_probe("exp", "max_batch", cfg.model_dump(mode="json"), result)
        (rec,) = store.probes("exp", "max_batch")
    assert rec.result["largest"] == result["largest"]


@pytest.mark.cuda
def test_cuda_out_of_memory_is_the_boundary_and_memory_is_released():
    cfg = config(fake(24, error="cuda_oom"), device="cuda")
    max_batch(cfg)  # the first run creates what CUDA keeps for the process (cuBLAS workspace)
    before = torch.cuda.memory_allocated()
    r = max_batch(cfg)
    assert r.largest == 24 and r.method == "cuda_max_allocated"
    assert any(t.reason.startswith("out of memory") for t in r.trials)
    assert torch.cuda.memory_allocated() == before


@pytest.mark.cuda
def test_cuda_memory_limit_uses_the_allocator_peak():
    cfg = config(device="cuda")
    free = max_batch(cfg, max_batch=64)
    assert free.largest == 64 and free.limit_source == "GPU total memory"
    peaks = [t.peak_bytes for t in sorted(free.trials)]
    assert peaks == sorted(peaks)
    limit = (peaks[0] + peaks[-1]) // 2
    r = max_batch(cfg, memory_limit=limit, max_batch=64)
    assert 1 <= r.largest < 64 and all(t.peak_bytes <= limit for t in r.trials if t.fits)


@pytest.mark.parametrize(("want", "fits", "split"), [
    (128, 33, (4, 32)), (128, 128, (1, 128)), (100, 40, (4, 25)), (97, 40, (97, 1)), (64, 1, (64, 1)),
])
def test_accumulation_split_is_the_fewest_equal_micro_batches_that_fit(want, fits, split):
    assert mb.accumulation_split(want, fits) == split
    k, micro = split
    assert k * micro == want and micro <= max(fits, 1)


def test_a_wanted_batch_that_does_not_fit_is_reached_by_accumulation(accounting_only):
    cfg = config(batch_size=128)
    a, b = linear_peak(cfg)
    limit = int((a + 34 * b + b // 2) / 0.9) + 1  # 34 within the 10% margin: 128 = 4 x 32
    r = max_batch(cfg, memory_limit=limit, margin=0.1)
    assert (r.recommended, r.want, r.accumulate, r.micro_batch_size) == (34, 128, 4, 32)
    assert r.advice == (
        "batch 128 does not fit in one step (at most 34 within the margin); reach it by gradient "
        "accumulation: batch 128 = 4 x 32 with train.accumulate = 4 (or train.micro_batch_size = "
        "32): the update is batch 128's, memory holds 32 at a time.")
    stored = json.loads(json.dumps(r.to_dict()))
    assert stored["accumulate"] == 4 and stored["advice"] == r.advice
    # an explicit want replaces the spec's batch size; one that fits needs no accumulation
    small = max_batch(cfg, memory_limit=limit, margin=0.1, want=24)
    assert (small.want, small.accumulate, small.micro_batch_size) == (24, 1, 24)
    assert small.advice == "batch 24 fits in one step (34 fit within the margin): no accumulation needed."


def test_accumulation_advice_warns_about_batchnorm_below_16_per_micro_batch():
    text = mb.accumulation_advice(128, 10, True, True, 1000)
    assert "batch 128 = 16 x 8 with train.accumulate = 16" in text
    assert "The model has BatchNorm, which normalises each micro-batch of 8 on its own" in text
    assert "BatchNorm" not in mb.accumulation_advice(128, 10, True, False, 1000)
    assert "BatchNorm" not in mb.accumulation_advice(128, 40, True, True, 1000)  # micro 32


def test_a_wanted_batch_above_max_was_never_tried_and_gets_no_split():
    # --start 16 --max 8 with the spec at batch 20: only batch 8 is tried, and it fits, so
    # nothing says batch 20 does not fit; advising 20 = 4 x 5 would rest on the cap alone
    r = max_batch(config(batch_size=20), max_batch=8, start=16)
    assert tried(r) == [8] and r.largest == 8 and r.limited_by == "max_batch"
    assert (r.want, r.accumulate, r.micro_batch_size) == (20, None, None)
    assert r.advice == (
        "batch 20 was not tried: the search stopped at 8, the largest batch allowed (--max, "
        "max_batch=), not at a memory limit, so whether it fits in one step is unknown; raise "
        "--max (max_batch=) to at least 20 to measure it.")
    assert "accumulat" not in r.advice and "does not fit" not in r.advice
    # a wanted batch within the cap still fits as it is
    assert max_batch(config(batch_size=8), max_batch=8).advice.startswith("batch 8 fits in one step")


def test_a_split_stays_when_the_margin_not_the_cap_sets_the_step(accounting_only):
    # the search stopped at max_batch = 64, but the 10% margin keeps only 34: memory says 128
    # does not fit within the margin, so accumulation is sound advice
    cfg = config(batch_size=128)
    a, b = linear_peak(cfg)
    limit = int((a + 34 * b + b // 2) / 0.9) + 1
    r = max_batch(cfg, memory_limit=limit, margin=0.1, max_batch=40)
    assert r.limited_by == "max_batch" and r.largest == 40 and r.recommended == 34
    assert (r.accumulate, r.micro_batch_size) == (4, 32)
    assert r.advice.startswith("batch 128 does not fit in one step (at most 34 within the margin)")


def test_the_cpu_cap_is_no_memory_limit_either():
    text = mb.accumulation_advice(2**17, 2**16, False, False, 10**6, stopped_by="cpu cap")
    assert text.startswith("batch 131072 was not tried: the search stopped at 65536, the CPU cap")
    assert "give a memory limit (--memory-limit, memory_limit=)" in text
    assert "accumulat" not in text


def test_a_wanted_batch_larger_than_the_training_set_is_refused_as_the_spec_refuses_it():
    r = max_batch(config(), max_batch=16, want=400)  # 240 training examples
    assert (r.want, r.accumulate, r.micro_batch_size) == (400, None, None)
    assert r.advice == (
        "batch 400 is larger than the 240 training examples: the spec refuses it (a batch cannot "
        "be larger than the training set), so no accumulation can reach it; use a batch of at "
        "most 240 (full batch) or more data.")
    # as a sweep would: the spec at that batch is refused
    from batchlab.errors import BatchlabError
    from batchlab.execute.datacache import DataCache
    from batchlab.execute.sweep import preflight
    from batchlab.plan import RunSpec

    cfg = config(batch_size=400)
    with pytest.raises(BatchlabError, match="train.batch_size 400 is larger than the training set"):
        preflight([RunSpec(cfg.run_id(), cfg)], DataCache())


def test_want_must_be_positive():
    with pytest.raises(ProbeError, match="want must be a batch size of at least 1, got 0"):
        max_batch(config(), want=0)


#: Linear -> BatchNorm1d -> ReLU -> Linear: in training mode it refuses a batch of 1 (the
#: source is also written as a module for the CLI's factory)
BN_SOURCE = '''
from torch import nn


class BatchNormNet(nn.Module):
    def __init__(self, input_shape, num_classes):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(input_shape[0], 16), nn.BatchNorm1d(16), nn.ReLU(),
                                 nn.Linear(16, num_classes))

    def forward(self, x):
        return self.net(x)
'''

_namespace: dict = {}
exec(BN_SOURCE, _namespace)
BatchNormNet = _namespace["BatchNormNet"]


def test_a_batchnorm_model_is_searched_from_batch_2():
    # BatchNorm1d cannot train on one example: batch 1 is no memory limit, so it is not tried
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        BatchNormNet((12,), 3).train()(torch.randn(1, 12))
    r = max_batch(config({"name": f"{__name__}:BatchNormNet"}), max_batch=16)
    assert tried(r) == [2, 4, 8, 16] and r.largest == 16 and r.limited_by == "max_batch"
    assert any("BatchNorm layers, which cannot train on a batch of 1" in n for n in r.notes)
    # the same for a module passed in (the Python API's model=), and a larger start is kept
    model = BatchNormNet((12,), 3)
    assert tried(max_batch(config(), model=model, max_batch=16)) == [2, 4, 8, 16]
    later = max_batch(config(), model=model, max_batch=16, start=4)
    assert tried(later) == [4, 8, 16] and not any("BatchNorm" in n for n in later.notes)
    # a model without BatchNorm still starts at 1
    assert tried(max_batch(config(), max_batch=4)) == [1, 2, 4]


def test_a_failing_step_names_a_start_option_that_exists():
    with pytest.raises(ProbeError, match=r"--start N, or bl.max_batch\(\.\.\., start=N\)"):
        max_batch(config(fake(0, error="value")))
    import batchlab as bl

    x, y = torch.randn(64, 12), torch.randint(0, 3, (64,))
    r = bl.max_batch(model=FailAbove((12,), 3, limit=100), train=(x, y), start=8, max_batch=16)
    assert tried(r) == [8, 16]


def test_cli_max_batch_on_a_batchnorm_model(tmp_path):
    import os
    import subprocess
    import sys

    (tmp_path / "bnnet.py").write_text(BN_SOURCE)
    spec = tmp_path / "bn.toml"
    spec.write_text('name = "bn"\n[data]\nname = "synthetic"\nshape = [12]\nclasses = 3\n'
                    'size = 100\n[model]\nname = "bnnet:BatchNormNet"\n[train]\nthreads = 1\n')
    import batchlab

    src = os.path.dirname(os.path.dirname(batchlab.__file__))  # this checkout's, from tmp_path
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(tmp_path), src])}
    out = subprocess.run([sys.executable, "-m", "batchlab", "max-batch", spec, "--max", "8",
                          "--start", "4", "--store", tmp_path / "s.db"],
                         capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    with Store(tmp_path / "s.db") as store:
        (rec,) = store.probes("bn", "max_batch")
    assert [t["batch_size"] for t in rec.result["trials"]] == [4, 8]
    bare = subprocess.run([sys.executable, "-m", "batchlab", "max-batch", spec, "--max", "8",
                           "--store", tmp_path / "s.db"],
                          capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert bare.returncode == 0, bare.stderr
    # the spec's batch (32) lies above --max: the search stopped there, not at memory
    flat = " ".join(bare.stdout.split())
    assert "batch 32 was not tried: the search stopped at 8, the largest batch allowed" in flat
    assert "reach it by gradient accumulation" not in flat
    assert "search started at batch 2" in " ".join(bare.stdout.split())


@pytest.mark.parametrize(("want", "fits", "split"), [
    (97, 40, None), (96, 40, (3, 32)), (64, 1, None), (2, 40, (1, 2)),
])
def test_a_batchnorm_split_keeps_two_examples_per_micro_batch(want, fits, split):
    assert mb.accumulation_split(want, fits, min_micro=2) == split


def test_a_batchnorm_model_is_never_advised_micro_batches_of_one(accounting_only):
    # batch 37 (prime) where 10 fit: 37 x 1 is the only equal split, which BatchNorm refuses
    cfg = config({"name": f"{__name__}:BatchNormNet"}, batch_size=37)
    peak = {b: step_memory(fresh_setup(cfg), b).bytes for b in (2, 4)}
    b = (peak[4] - peak[2]) // 2
    limit = int((peak[2] + 8 * b + b // 2) / 0.9) + 1  # about 10 within the 10% margin
    r = max_batch(cfg, memory_limit=limit, margin=0.1)
    assert 2 <= r.recommended < 37 and (r.want, r.accumulate, r.micro_batch_size) == (37, None, None)
    assert "the only equal split of 37 into parts that fit is 37 x 1, which the model's " \
           "BatchNorm cannot train (it needs 2 examples per forward pass)" in r.advice
    k = -(-36 // r.recommended)
    while 36 % k:
        k += 1
    assert r.advice.endswith(f"use a batch that splits, e.g. 36 = {k} x {36 // k} with "
                             f"train.accumulate = {k}.")
