"""The noise-scale core (batchlab.train.noise): the estimator against a closed form, the meter.

Closed form (linear regression): x ~ N(0, I_d), y = w*.x + eps with eps ~ N(0, s^2), loss
per example l = (w.x - y)^2 / 2 at a fixed w = w* + d. The per-example gradient is
g = (d.x - eps) x, so G = E[g] = E[x x^T] d = d and, by Isserlis' theorem,
E[g g^T] = |d|^2 I + 2 d d^T + s^2 I. Hence tr(Sigma) = tr E[g g^T] - |G|^2
= (dim + 1)|d|^2 + dim s^2 and B_simple = ((dim + 1)|d|^2 + dim s^2) / |d|^2.
"""

import math

import pytest
import torch
from torch import nn

from batchlab.train.noise import NoiseMeter, NoiseScaleEstimator, bootstrap_ci, ratio, step_estimates

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
