"""option_speedups: what bf16 / channels_last would buy, timed side by side on fresh copies."""

import re

import pytest
import torch

from batchlab.models import build_model
from batchlab.probes.common import ProbeError
from batchlab.probes.options import VARIANTS, option_speedups
from batchlab.spec import RunConfig, spec_from_dict

FAST = {"warmup_steps": 1, "windows": 2, "window_seconds": 0.01}


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
    assert r.ratio[2] == pytest.approx(r.samples_per_s[2] / r.samples_per_s[0])
    lines = r.lines()
    assert len(lines) == 3
    m = re.fullmatch(r"bf16 autocast: (\d+\.\d\d)x samples/s \(([\d,]+) vs ([\d,]+) in fp32\) at batch 16",
                     lines[1])
    assert m and float(m.group(1)) == pytest.approx(round(r.ratio[2], 2))
    assert int(m.group(3).replace(",", "")) == round(r.samples_per_s[0])
    assert torch.equal(torch.get_rng_state(), rng)  # no side effects on the caller
    assert all(torch.equal(v, mine.state_dict()[k]) for k, v in before.items())


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
    ({"batch_size": 1000}, "larger than the"),
])
def test_bad_settings(kwargs, match):
    with pytest.raises(ProbeError, match=match):
        option_speedups(config(IMAGES, {"name": "lenet5"}), **kwargs)
