"""option_speedups: what bf16 / channels_last would buy, timed side by side on fresh copies."""

import re
import time

import pytest
import torch

from batchlab.models import build_model
from batchlab.probes.common import ProbeError
from batchlab.probes.options import VARIANTS, OptionsResult, option_speedups, window_clock
from batchlab.spec import RunConfig, spec_from_dict

FAST = {"warmup_steps": 1, "windows": 2, "window_seconds": 0.01, "max_seconds": 0}


def config(data, model, **train):
    s = spec_from_dict({"data": data, "model": model,
                        "train": {"device": "cpu", "threads": 1, "batch_size": 16, **train}})
    return RunConfig(data=s.data, model=s.model, train=s.train)


IMAGES = {"name": "synthetic", "shape": [3, 16, 16], "size": 80}


def test_every_variant_is_timed_on_images_and_reported_against_fp32():
    cfg = config(IMAGES, {"name": "lenet5"})
    mine = build_model(cfg.model, (3, 16, 16), 10)
    before = {k: v.clone() for k, v in mine.state_dict().items()}
    rng = torch.get_rng_state()
    r = option_speedups(cfg, model=mine, **FAST)
    assert r.labels == [label for label, _, _ in VARIANTS] and r.batch_size == 16
    assert not r.skipped and all(v > 0 for v in r.samples_per_s)
    assert r.ratio[0] == 1.0
    per_round = [a / b for a, b in zip(r.window_rates["bf16 autocast"], r.window_rates["fp32"],
                                       strict=True)]
    assert r.rounds == 2 and r.ratio[2] == pytest.approx(sum(per_round) / 2)  # median of 2
    lines = r.lines()
    assert len(lines) == 3 + (not r.reached)
    m = re.fullmatch(r"bf16 autocast: (\d+\.\d\d)x samples/s at batch 16 \(median of 2 rounds, "
                     r"each timed beside fp32; the two middle rounds: ([\d,]+) vs ([\d,]+) and "
                     r"([\d,]+) vs ([\d,]+) in fp32\), spread \d+%", lines[1])
    assert m and float(m.group(1)) == pytest.approx(round(r.ratio[2], 2))
    # the rounds quoted are the ones the ratio is the median of
    assert sorted(int(m.group(i).replace(",", "")) for i in (3, 5)) == sorted(
        round(v) for v in r.window_rates["fp32"])
    assert torch.equal(torch.get_rng_state(), rng)  # no side effects on the caller
    assert all(torch.equal(v, mine.state_dict()[k]) for k, v in before.items())


def hand_made(rates_v, rates_f):
    """An OptionsResult of bf16 vs fp32 with these per-round samples/s, its ratio and medians
    computed as option_speedups computes them."""
    from statistics import median

    ratios = [v / f for v, f in zip(rates_v, rates_f, strict=True)]
    return OptionsResult(16, ["fp32", "bf16 autocast"], [median(rates_f), median(rates_v)],
                         [1.0, median(ratios)], [0.0, 0.03], {}, "cpu", {}, 1.0,
                         rounds=len(rates_v), window_rates={"fp32": rates_f,
                                                            "bf16 autocast": rates_v})


def test_each_ratio_is_quoted_with_numbers_that_agree_with_it():
    # a loaded machine moves whole rounds: the medians of the windows (396 vs 313) say 1.27x,
    # while the median of the paired rounds' ratios is 1.04x
    r = hand_made([325.0, 396.0, 500.0, 450.0, 200.0], [313.0, 300.0, 490.0, 440.0, 150.0])
    assert r.samples_per_s == [313.0, 396.0] and r.ratio[1] == pytest.approx(325 / 313)
    (line,) = r.lines()
    assert line == ("bf16 autocast: 1.04x samples/s at batch 16 (median of 5 rounds, each timed "
                    "beside fp32; median round: 325 vs 313 in fp32), spread 3%")
    assert "396" not in line
    # an even count: the two middle rounds, whose ratios average to the median
    r = hand_made([330.0, 220.0, 500.0, 100.0], [300.0, 200.0, 250.0, 100.0])
    (line,) = r.lines()
    assert line.startswith("bf16 autocast: 1.10x samples/s at batch 16 (median of 4 rounds, each "
                           "timed beside fp32; the two middle rounds: 330 vs 300 and 220 vs 200 "
                           "in fp32)")


def test_channels_last_on_flat_data_is_listed_with_why_not():
    cfg = config({"name": "synthetic", "shape": [12], "size": 80}, {"name": "mlp", "hidden": [8]},
                 accumulate=2)
    r = option_speedups(cfg, batch_size=32, **FAST)
    assert r.samples_per_s[0] > 0 and r.samples_per_s[2] > 0  # fp32 and bf16 measured
    assert r.samples_per_s[1] is None and r.samples_per_s[3] is None
    assert set(r.skipped) == {"channels_last", "bf16 + channels_last"}
    assert "needs image inputs" in r.skipped["channels_last"]
    assert r.lines()[0].startswith("channels_last: not measured (train.channels_last = true needs image")
    assert r.settings["micro_batch_size"] == 16  # the config's accumulation applies


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"windows": 0}, "windows >= 1"), ({"window_seconds": 0}, "window_seconds > 0"),
    ({"batch_size": 1000}, "larger than the"), ({"max_windows": 4}, "max_windows >= windows"),
    ({"max_spread": 0}, "max_spread > 0"),
])
def test_bad_settings(kwargs, match):
    with pytest.raises(ProbeError, match=match):
        option_speedups(config(IMAGES, {"name": "lenet5"}), **kwargs)


def scripted_windows(monkeypatch, seconds):
    """Replace the timed window by scripted (1 step, seconds) results, in call order: the
    repeat rule is then tested on known timings, not on this machine's."""
    script = iter(seconds)
    monkeypatch.setattr("batchlab.probes.options.timed_window", lambda *a: (1, next(script)))


def rounds_of(channels_last):
    """Per round the four CPU variants' seconds: fp32 1.0, the others fixed, channels_last's
    from ``channels_last``."""
    return [s for c in channels_last for s in (1.0, c, 0.5, 0.5)]


def test_rounds_are_added_until_every_ratio_is_within_the_spread(monkeypatch):
    noisy, calm = [1.0, 0.5, 0.8, 0.6, 0.9], [0.8] * 20
    scripted_windows(monkeypatch, rounds_of(noisy + calm))
    r = option_speedups(config(IMAGES, {"name": "lenet5"}), warmup_steps=0, windows=5)
    assert r.reached and 5 < r.rounds < 25
    assert r.spread[1] <= 0.05 and r.ratio[1] == pytest.approx(1.25)  # 1 / 0.8
    assert r.ratio[2] == r.ratio[3] == pytest.approx(2.0) and r.spread[2] == 0.0
    assert len(r.window_rates["fp32"]) == r.rounds and len(r.lines()) == 3


def test_a_spread_never_reached_is_said_with_the_spread(monkeypatch):
    scripted_windows(monkeypatch, rounds_of([1.0, 0.5] * 10))
    r = option_speedups(config(IMAGES, {"name": "lenet5"}), warmup_steps=0, windows=5,
                        max_windows=8)
    assert not r.reached and r.rounds == 8 and r.spread[1] == pytest.approx(1.0 / 1.5)
    lines = r.lines()
    assert lines[0].endswith("spread 67%")
    assert lines[-1].startswith("could not reach a spread of 5% in 8 rounds")


def test_one_cpu_thread_times_windows_in_its_cpu_time():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert window_clock(torch.device("cpu"))[0] is time.thread_time
        torch.set_num_threads(2)
        assert window_clock(torch.device("cpu"))[0] is time.perf_counter
    finally:
        torch.set_num_threads(before)
    assert window_clock(torch.device("cuda"))[1] == "wall"
