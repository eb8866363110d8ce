"""The gradient noise scale: the estimator against a closed form, the probe, the loop option.

Closed form (linear regression): x ~ N(0, I_d), y = w*.x + eps with eps ~ N(0, s^2), loss
per example l = (w.x - y)^2 / 2 at a fixed w = w* + d. The per-example gradient is
g = (d.x - eps) x, so G = E[g] = E[x x^T] d = d and, by Isserlis' theorem,
E[g g^T] = |d|^2 I + 2 d d^T + s^2 I. Hence tr(Sigma) = tr E[g g^T] - |G|^2
= (dim + 1)|d|^2 + dim s^2 and B_simple = ((dim + 1)|d|^2 + dim s^2) / |d|^2.
"""

import json
import math

import pytest
import torch
from torch import nn

from batchlab.events import MetricRows
from batchlab.probes.noise_scale import (
    NoiseMeter,
    NoiseScaleEstimator,
    bootstrap_ci,
    measure_noise_scale,
    ratio,
    step_estimates,
)
from batchlab.spec import RunConfig, spec_from_dict
from batchlab.train.loop import train_run

DIM, SIGMA = 8, 1.0
DELTA = torch.zeros(DIM)
DELTA[0] = 1.0
TRUE_B = ((DIM + 1) * 1.0 + DIM * SIGMA**2) / 1.0  # = 17


def half_mse(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return 0.5 * (out.squeeze(1) - y).pow(2).mean()


def regression_meter(batch: int, steps: int, micro_batches: int = 4) -> NoiseMeter:
    """Measure the regression problem at the fixed weight w* + DELTA, fresh data each step."""
    gen = torch.Generator().manual_seed(0)
    w_star = torch.randn(DIM, generator=gen)
    model = nn.Linear(DIM, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_((w_star + DELTA)[None])
    meter = NoiseMeter(micro_batches, loss_fn=half_mse)
    for _ in range(steps):
        x = torch.randn(batch, DIM, generator=gen)
        y = x @ w_star + SIGMA * torch.randn(batch, generator=gen)
        meter.measure(model, x, y)
    return meter


@pytest.mark.parametrize("batch", [64, 66])  # 66: micro-batches of 17, 17, 16, 16
def test_estimator_recovers_the_closed_form_noise_scale(batch):
    e = regression_meter(batch, steps=400).estimator
    assert e.b_simple_mean() == pytest.approx(TRUE_B, rel=0.10)
    assert float(torch.tensor(e.g2).mean()) == pytest.approx(1.0, rel=0.15)  # |G|^2 = |d|^2
    assert float(torch.tensor(e.trace).mean()) == pytest.approx(TRUE_B, rel=0.10)
    lo, hi = bootstrap_ci(e.g2, e.trace, seed=0)
    assert lo < TRUE_B < hi and hi / lo < 1.3
    assert math.isfinite(e.b_simple_ema())


def test_step_estimates_invert_the_expectations_exactly():
    g2, tr, bs, bb = 2.0, 30.0, 8, 32
    small, big = g2 + tr / bs, g2 + tr / bb  # E|G_small|^2, E|G_big|^2
    assert step_estimates(small, big, bs, bb) == pytest.approx((g2, tr))
    assert math.isnan(ratio(1.0, 0.0)) and math.isnan(ratio(1.0, -2.0))
    with pytest.raises(ValueError):
        step_estimates(1.0, 1.0, 8, 8)


def test_bootstrap_is_seeded_and_estimator_state_round_trips():
    e = NoiseScaleEstimator(ema=0.9)
    for g2, tr in [(1.0, 10.0), (0.5, 12.0), (1.5, 8.0), (-0.2, 11.0)]:
        e.update(g2, tr)
    assert bootstrap_ci(e.g2, e.trace, seed=3) == bootstrap_ci(e.g2, e.trace, seed=3)
    assert all(math.isnan(v) for v in bootstrap_ci([1.0], [2.0]))  # no interval from one step
    copy = NoiseScaleEstimator.from_state(e.state())
    assert copy.b_simple_ema() == e.b_simple_ema() and copy.b_simple_mean() == e.b_simple_mean()


def test_measuring_changes_nothing_in_the_model_or_the_rng():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))
    x, y = torch.randn(24, 6), torch.randint(0, 3, (24,))
    nn.functional.cross_entropy(model(x), y).backward()  # some .grad the meter must not touch
    state = {k: v.clone() for k, v in model.state_dict().items()}
    grads = [p.grad.clone() for p in model.parameters()]
    rng = torch.get_rng_state()
    assert NoiseMeter(4).measure(model, x, y) is not None
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, model.parameters(), strict=True))
    assert torch.equal(torch.get_rng_state(), rng)


def config(**train) -> RunConfig:
    s = spec_from_dict({"data": {"name": "synthetic", "shape": [12], "classes": 3, "size": 300},
                        "model": {"name": "mlp", "hidden": [16], "dropout": 0.2},
                        "train": {"batch_size": 32, "epochs": 3, "lr": 0.05, "threads": 1, **train}})
    return RunConfig(data=s.data, model=s.model, train=s.train)


def test_probe_trains_a_copy_and_reports_an_interval():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 3))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    r = measure_noise_scale(config(), steps=30, model=model)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.equal(torch.get_rng_state(), rng)
    assert r.steps == list(range(1, 31)) and len(r.trace_b_simple) == len(r.trace_loss) == 30
    assert r.ci_low <= r.b_simple <= r.ci_high and r.b_simple > 0
    assert r.batch_size == 32 and r.micro_batches == 4
    json.dumps(r.to_dict(), allow_nan=False)
    assert measure_noise_scale(config(), steps=30, model=model).b_simple == r.b_simple  # seeded


def test_probe_refuses_auto_lr_and_too_small_batches():
    from batchlab.errors import BatchlabError

    with pytest.raises(BatchlabError, match="resolved by the LR range test"):
        measure_noise_scale(config(lr="auto"), steps=5)
    with pytest.raises(BatchlabError, match="micro_batches"):
        measure_noise_scale(config(batch_size=3), steps=5)


def rows_of(cfg, **kw):
    events = []
    end = train_run(cfg, events.append, **kw)
    return end, [r for e in events if isinstance(e, MetricRows) for r in e.rows]


def test_loop_option_records_noise_scale_and_leaves_training_bit_identical():
    plain_end, plain = rows_of(config())
    end, rows = rows_of(config(measure_noise_scale=True, noise_scale_every=2))
    loss = [(r[1], r[2]) for r in rows if r[0] == "train_loss"]
    assert loss == [(r[1], r[2]) for r in plain if r[0] == "train_loss"]  # exactly equal
    assert end.summary["final_val_loss"] == plain_end.summary["final_val_loss"]
    spe = end.summary["steps_per_epoch"]
    noise = [(r[1], r[2]) for r in rows if r[0] == "noise_scale"]
    assert [s for s, _ in noise] == [spe, 2 * spe, 3 * spe]
    assert end.summary["noise_scale"] == noise[-1][1]
    assert end.summary["noise_scale_measurements"] == math.ceil(3 * spe / 2)
    lo, hi = end.summary["noise_scale_ci"]
    assert lo <= end.summary["noise_scale_mean"] <= hi
    assert "noise_scale" not in plain_end.summary


def test_loop_option_survives_a_resume(tmp_path):
    cfg = config(epochs=4, measure_noise_scale=True, noise_scale_every=3)
    full_end, _ = rows_of(cfg)
    ckpt = tmp_path / "run.pt"

    def interrupt(e):
        if isinstance(e, MetricRows) and e.step > 25:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_run(cfg, interrupt, checkpoint_path=ckpt)
    end, _ = rows_of(cfg, checkpoint_path=ckpt)
    assert end.summary["noise_scale"] == full_end.summary["noise_scale"]
    assert end.summary["noise_scale_measurements"] == full_end.summary["noise_scale_measurements"]


def test_run_ids_change_only_when_the_option_is_on():
    assert config(noise_scale_every=7).run_id() == config().run_id()
    assert config(measure_noise_scale=True).run_id() != config().run_id()
    with pytest.raises(Exception, match="noise_scale_micro_batches"):
        config(measure_noise_scale=True, batch_size=2)
