"""The LR range test, lr_find and train.lr = "auto" on a tiny synthetic problem."""

import json
import math

import pytest
import torch
from torch import nn

from batchlab.events import RunEnded
from batchlab.plan import plan_runs
from batchlab.probes.common import ProbeError
from batchlab.probes.lr_range import (
    lr_find,
    lr_ramp,
    lr_range_test,
    resolve_auto_lr,
)
from batchlab.spec import RunConfig, spec_from_dict
from batchlab.store import Store
from batchlab.train.loop import train_run

DATA = {"name": "synthetic", "shape": [12], "classes": 3, "size": 400}
QUICK = {"steps": 40}  # enough for a curve, fast enough for the suite


def config(**train) -> RunConfig:
    s = spec_from_dict({"data": DATA, "model": {"name": "mlp", "hidden": [16]},
                        "train": {"batch_size": 32, "lr": 0.05, "threads": 1, **train}})
    return RunConfig(data=s.data, model=s.model, train=s.train)


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
    with pytest.raises(ProbeError, match="unknown LR suggestion strategy"):
        lr_find(config(), strategy="magic")


def test_lr_find_over_two_batch_sizes_fits_alpha_and_stores(tmp_path):
    result = lr_find(config(), batch_sizes=[16, 64], repeats=2, strategy="trial", **QUICK)
    assert [b.batch_size for b in result.per_batch] == [16, 64]
    assert result.alpha is not None and math.isfinite(result.alpha)
    assert result.batch_size == 16 and result.suggested_lr == result.lr_for(16)
    for b in result.per_batch:
        assert b.lr is not None and b.lr_min <= b.lr <= b.lr_max
        assert len(b.tests) == 2 and [t.seed for t in b.tests] == [0, 1]
        assert set(b.by_strategy) == {"trial", "valley", "steepest", "minimum_div_10"}
        assert b.by_strategy["trial"] == b.lr and len(b.trials) == 5
        # two range tests of 40 steps at most, plus five trials of at most 30 steps each
        assert 0 < b.cost_steps <= 2 * 40 + 5 * 30
        assert b.cost_epochs == pytest.approx(b.cost_steps * b.batch_size / 320)
    d = result.to_dict()
    json.dumps(d, allow_nan=False)
    assert {"lrs", "losses", "suggested_lr", "batch_sizes", "suggestions", "alpha"} <= set(d)
    assert d["suggestions"] == {"16": result.lr_for(16), "64": result.lr_for(64)}
    with Store(tmp_path / "s.db") as store:
        store.add_probe("exp", "lr_range", config().model_dump(mode="json"), d)
        assert store.probes("exp", "lr_range")[0].result["alpha"] == pytest.approx(result.alpha)


def test_alpha_needs_two_batch_sizes():
    result = lr_find(config(), repeats=1, **QUICK)
    assert result.alpha is None and "2 or more batch sizes" in result.alpha_reason


def test_auto_lr_is_resolved_once_per_batch_size_and_ids_are_stable():
    spec = spec_from_dict({"data": DATA, "model": {"name": "mlp", "hidden": [16]},
                           "train": {"lr": "auto", "threads": 1, "scale_lr": "linear"},
                           "sweep": {"grid": {"train.batch_size": [16, 32]}, "repeats": 2}})
    runs = plan_runs(spec)
    calls = []
    resolved = resolve_auto_lr(runs, repeats=1, on_result=lambda c, r: calls.append(c), **QUICK)
    assert len(calls) == 2  # two batch sizes; the two seeds of each share one test
    assert [r.run_id for r in resolved] == [r.config.run_id() for r in resolved]
    assert all(isinstance(r.config.train.lr, float) for r in resolved)
    by_batch = {}
    for r in resolved:
        t = r.config.train
        by_batch.setdefault(t.batch_size, set()).add(t.lr * t.batch_size / t.base_batch_size)
    assert all(len(v) == 1 for v in by_batch.values())  # effective LR shared by the seeds
    again = resolve_auto_lr(runs, repeats=1, **QUICK)
    assert [r.run_id for r in again] == [r.run_id for r in resolved]
    fixed = plan_runs(spec_from_dict({"data": DATA, "train": {"lr": 0.1}}))
    assert resolve_auto_lr(fixed) == fixed


def test_an_unresolved_auto_lr_fails_the_run_with_a_clear_message():
    events = []
    end = train_run(config(lr="auto", epochs=1), events.append)
    assert isinstance(end, RunEnded) and end.status == "failed"
    assert "must be resolved by the LR range test first" in end.error
