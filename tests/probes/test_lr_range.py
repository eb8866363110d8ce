"""The LR range test on a tiny synthetic problem."""

import pytest
import torch
from lr_problem import QUICK, config
from torch import nn

from batchlab.probes.common import ProbeError
from batchlab.probes.lr_range import lr_ramp, lr_range_test


def test_ramp_is_exponential_from_start_to_end():
    ramp = lr_ramp(1e-6, 1.0, 7)
    assert ramp[0] == pytest.approx(1e-6) and ramp[-1] == pytest.approx(1.0)
    assert ramp[1:] / ramp[:-1] == pytest.approx([10.0] * 6)


def test_range_test_stops_on_divergence_and_suggests_inside_the_ramp():
    r = lr_range_test(config(), end_lr=1e3, **QUICK)
    assert r.stopped_early and ("exceeded" in r.stopped_early or "non-finite" in r.stopped_early)
    assert 10 < len(r.lrs) < 40 and len(r.losses) == len(r.smoothed) == len(r.lrs)
    assert r.smoothed[0] == pytest.approx(r.losses[0])  # bias correction: first EMA = first loss
    for s in r.suggestions().values():
        assert s.lr is not None, s.reason
        low = r.lrs[0] / 10 if s.strategy == "minimum_div_10" else r.lrs[0]
        assert low <= s.lr <= r.lrs[-1]


def test_range_test_is_deterministic_and_leaves_the_rng_alone():
    before = torch.get_rng_state()
    a = lr_range_test(config(), **QUICK)
    assert torch.equal(torch.get_rng_state(), before)
    b = lr_range_test(config(), **QUICK)
    assert a.losses == b.losses
    assert lr_range_test(config(), seed=1, **QUICK).losses != a.losses


def test_the_callers_model_is_bit_identical_after_the_probe():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(12, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    lr_range_test(config(), model=model, **QUICK)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # incl. BatchNorm running stats
    assert all(p.grad is None for p in model.parameters())


def test_a_range_that_diverges_at_once_is_a_probe_error():
    with pytest.raises(ProbeError, match="diverged at once.*Lower its start.*--start-lr"):
        lr_range_test(config(), start_lr=1e3, end_lr=1e6, **QUICK)


def test_bad_input_is_a_probe_error():
    with pytest.raises(ProbeError, match="larger than the 320 training examples"):
        lr_range_test(config(batch_size=500), **QUICK)
    with pytest.raises(ProbeError, match="start_lr < end_lr"):
        lr_range_test(config(), start_lr=1.0, end_lr=0.1)
