"""throughput: the knee on synthetic curves, the measured curve, warm-up exclusion, OOM, plot."""

import json
import time

import pytest
import torch
from torch import nn

from batchlab.probes.common import ProbeError
from batchlab.probes.knee import explain_knee, find_knee
from batchlab.probes.throughput import DEFAULT_BATCH_SIZES, plot_throughput, throughput_curve
from batchlab.spec import RunConfig, spec_from_dict
from batchlab.store import Store

SIZES = [8, 16, 32, 64, 128, 256, 512, 1024]
FAST = {"warmup_steps": 2, "windows": 3, "window_steps": 2}  # short, deterministic step counts


def config(model=None, device="cpu"):
    s = spec_from_dict({
        "data": {"name": "synthetic", "shape": [12], "classes": 3, "size": 300},
        "model": model or {"name": "mlp", "hidden": [16]},
        "train": {"threads": 1, "device": device},
    })
    return RunConfig(data=s.data, model=s.model, train=s.train)


class Fake(nn.Module):
    """A linear model whose first ``slow`` forward calls sleep 0.1 s, and whose forward raises
    an allocator error (``error="oom"``) or a ValueError on batches larger than ``limit``."""

    def __init__(self, input_shape, num_classes, slow=0, limit=10**9, error="oom"):
        super().__init__()
        self.fc = nn.Linear(input_shape[0], num_classes)
        self.slow, self.limit, self.error = slow, limit, error

    forwards = 0  # calls over all instances, for counting steps

    def forward(self, x):
        Fake.forwards += 1
        if self.slow > 0:
            self.slow -= 1
            time.sleep(0.1)
        if len(x) > self.limit:
            if self.error == "oom":
                raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to "
                                   "allocate 123456789 bytes. Error code 12")
            raise ValueError(f"cannot take {len(x)}")
        return self.fc(x)


def fake(**kwargs):
    return {"name": f"{__name__}:Fake", "kwargs": kwargs}


# --------------------------------------------------------------------------- the knee


def test_knee_of_a_curve_that_saturates():
    rates = [100 * min(b, 128) for b in SIZES]
    assert find_knee(SIZES, rates, 1.1) == 128


def test_knee_where_a_doubling_gains_just_under_the_threshold():
    rates = [100, 200, 300, 329, 360, 370]  # 300 -> 329 is +9.7%, 329 -> 360 is +9.4%
    assert find_knee(SIZES[:6], rates, 1.1) == 32


def test_a_dip_in_the_middle_does_not_end_the_curve_early():
    rates = [100, 200, 205, 400, 800, 820, 830, 800]
    knee, why = explain_knee(SIZES, rates, 1.1)
    assert knee == 128 and "beyond batch size 128" in why


def test_a_small_late_bump_does_not_erase_the_knee():
    # a noisy last point (+11.7%) over a flat stretch: from 32 it is < 1.1x per doubling
    rates = [979, 1587, 2177, 2134, 2252, 2362, 2416, 2699]
    assert find_knee(SIZES, rates, 1.1) == 32


def test_gain_is_per_doubling_when_sizes_skip_powers():
    assert find_knee([8, 32, 64], [100, 300, 310], 1.1) == 32  # 3x over two doublings: 1.73x each
    assert find_knee([8, 128], [100, 140], 1.1) == 8  # 1.4x over four doublings: 1.09x each


def test_no_knee_is_explained():
    knee, why = explain_knee(SIZES, [b * 10.0 for b in SIZES], 1.1)
    assert knee is None and "still grows by 2.00x per doubling from 512 to 1024" in why
    knee, why = explain_knee([8], [100.0], 1.1)
    assert knee is None and "two or more" in why


def test_a_falling_curve_has_its_knee_at_the_start():
    assert find_knee(SIZES[:4], [400, 300, 200, 100], 1.1) == 8


@pytest.mark.parametrize(("sizes", "rates", "gain"), [
    ([8, 16], [1.0], 1.1), ([16, 8], [1.0, 2.0], 1.1), ([8, 16], [1.0, float("nan")], 1.1),
    ([8, 16], [0.0, 1.0], 1.1), ([8, 16], [1.0, 2.0], 1.0),
])
def test_knee_rejects_malformed_curves(sizes, rates, gain):
    with pytest.raises(ValueError):
        find_knee(sizes, rates, gain)


# --------------------------------------------------------------------------- the curve


def test_curve_on_a_tiny_model(tmp_path):
    rng = torch.get_rng_state()
    r = throughput_curve(config(), batch_sizes=[32, 8, 16, 512], **FAST)
    assert torch.equal(rng, torch.get_rng_state())
    assert r.batch_sizes == [8, 16, 32]  # sorted; 512 > the 240 training examples
    assert r.skipped == [{"batch_size": 512, "reason": "larger than the 240 training examples"}]
    assert r.notes[0] == "skipped batch sizes [512]: larger than the 240 training examples"
    assert all(s > 0 for s in r.samples_per_s) and r.steps_timed == [6, 6, 6]
    assert all(len(w) == 3 and min(w) <= m <= max(w)
               for w, m in zip(r.window_samples_per_s, r.samples_per_s, strict=True))
    assert r.peak_bytes == sorted(r.peak_bytes) and r.peak_bytes[0] < r.peak_bytes[-1]
    assert r.memory_method == "cpu_accounting" and r.threads == 1 and r.oom is None
    assert r.threads_reason == "train.threads"
    assert len(r.window_spread) == len(r.rounds) == 3 and all(n >= 1 for n in r.rounds)
    assert r.wall_time >= sum(r.seconds) > 0
    d = r.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert {"batch_sizes", "samples_per_s", "peak_bytes", "knee", "wall_time"} <= set(d)
    with Store(tmp_path / "s.db") as store:
        store.add_probe("exp", "throughput", config().model_dump(mode="json"), d)
        assert store.probes("exp", "throughput")[0].result["batch_sizes"] == [8, 16, 32]
    out = plot_throughput(r, tmp_path / "tp.png")
    assert out.stat().st_size > 1000


def test_default_sizes_are_powers_of_two_capped_at_the_training_set():
    assert DEFAULT_BATCH_SIZES == (8, 16, 32, 64, 128, 256, 512, 1024, 2048)
    r = throughput_curve(config(), warmup_steps=1, windows=1, window_steps=1)
    assert r.batch_sizes == [8, 16, 32, 64, 128]
    assert [s["batch_size"] for s in r.skipped] == [256, 512, 1024, 2048]


def test_warm_up_steps_are_not_timed():
    # the first 3 forward calls of each fresh model sleep 0.1 s
    warm = throughput_curve(config(fake(slow=3)), batch_sizes=[8], warmup_steps=3, windows=3,
                            window_steps=1)
    assert min(warm.window_samples_per_s[0]) > 8 / 0.05  # no sleep in any timed window
    cold = throughput_curve(config(fake(slow=3)), batch_sizes=[8], warmup_steps=1, windows=3,
                            window_steps=1, repeats=0)
    rates = cold.window_samples_per_s[0]
    assert max(rates[:2]) < 8 / 0.1 < rates[2]  # the memory step alone warmed up: 2 slow windows
    # windows that far apart make the curve unreliable ...
    assert not cold.reliable and cold.window_spread[0] > 1 and cold.knee is None
    # ... unless repeating them gives a round that agrees: the slow windows are not kept
    again = throughput_curve(config(fake(slow=3)), batch_sizes=[8], warmup_steps=1, windows=3,
                             window_steps=1)
    assert again.rounds[0] >= 2 and min(again.window_samples_per_s[0]) > 8 / 0.1


def test_steps_longer_than_a_window_get_no_more_warm_up_and_three_windows():
    # every forward sleeps 0.1 s, twice the window: the memory step, then 3 one-step windows
    Fake.forwards = 0
    r = throughput_curve(config(fake(slow=100)), batch_sizes=[8], warmup_steps=3, windows=5,
                         window_seconds=0.05, repeats=0)  # counts steps: no re-measuring
    assert len(r.window_samples_per_s[0]) == 3 and r.steps_timed == [3]
    assert "the memory step is the warm-up and 3 windows are timed" in r.notes[0]
    assert Fake.forwards == 4


def test_time_windows_last_at_least_their_length():
    r = throughput_curve(config(), batch_sizes=[8], warmup_steps=1, windows=2, window_seconds=0.05)
    assert r.steps_timed[0] >= 2 and r.seconds[0] >= 0.1


def test_out_of_memory_ends_the_curve():
    r = throughput_curve(config(fake(limit=20)), batch_sizes=[8, 16, 32, 64], **FAST)
    assert r.batch_sizes == [8, 16] and r.oom["batch_size"] == 32
    assert "DefaultCPUAllocator" in r.oom["error"]
    assert r.skipped == [{"batch_size": 64, "reason": "after the out-of-memory error at 32"}]
    assert r.notes[0] == "skipped batch sizes [64]: after the out-of-memory error at 32"


def test_other_errors_are_raised_with_their_message():
    with pytest.raises(ProbeError, match="batch size 16 failed with ValueError: cannot take 16") as info:
        throughput_curve(config(fake(limit=8, error="value")), batch_sizes=[8, 16], **FAST)
    assert isinstance(info.value.__cause__, ValueError)


@pytest.mark.parametrize("kwargs", [
    {"batch_sizes": []}, {"batch_sizes": [0, 8]}, {"windows": 0}, {"warmup_steps": -1},
    {"window_seconds": 0}, {"window_steps": 0}, {"knee_gain": 1.0},
    {"max_spread": 0}, {"repeats": -1}, {"workers": 0},
    {"batch_sizes": [256, 512]},  # all above the 240 training examples
])
def test_bad_settings(kwargs):
    with pytest.raises(ProbeError):
        throughput_curve(config(), **kwargs)


@pytest.mark.cuda
def test_cuda_curve_measures_allocator_peaks():
    r = throughput_curve(config(device="cuda"), batch_sizes=[8, 64], **FAST)
    assert r.batch_sizes == [8, 64] and r.memory_method == "cuda_max_allocated"
    assert r.device.startswith("cuda") and all(s > 0 for s in r.samples_per_s)
    assert r.peak_bytes[1] > r.peak_bytes[0]


def test_threads_default_to_what_a_sweep_run_would_use():
    s = spec_from_dict({"data": {"name": "synthetic", "shape": [12], "classes": 3, "size": 300},
                        "model": {"name": "mlp", "hidden": [16]}, "train": {"device": "cpu"}})
    no_threads = RunConfig(data=s.data, model=s.model, train=s.train)
    before = torch.get_num_threads()  # 1: the probe tests' fixture
    one = throughput_curve(no_threads, batch_sizes=[8], **FAST)
    assert one.threads == before and "sweep --workers 1" in one.threads_reason
    many = throughput_curve(no_threads, batch_sizes=[8], workers=64, **FAST)
    assert many.threads == 1 and "// 64 workers" in many.threads_reason
    assert torch.get_num_threads() == before
