"""The noise-scale probe: B_simple = tr(Sigma) / |G|^2 (McCandlish et al. 2018) measured at
every step of a short training run on a fresh copy of the model, with a bootstrap interval
and its trace over the steps.

The estimator and the side-computation meter are ``batchlab.train.noise`` (shared with the
training loop's ``train.measure_noise_scale`` option); the estimator's maths is documented
there. The probe measures every step, so its estimate is denser than the loop option's and
each of its steps costs 2-3.6 plain steps (the measurement is 1.0-2.6x a step on CPU).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from batchlab.data.pipeline import LoadedData
from batchlab.jsonsafe import json_safe
from batchlab.probes.common import ProbeError, fresh_setup, isolated_rng
from batchlab.probes.plotting import Plottable
from batchlab.spec import RunConfig
from batchlab.train.inputs import RunInputs
from batchlab.train.noise import NoiseMeter, bootstrap_ci
from batchlab.train.optim import set_lr
from batchlab.train.scaling import scaled_lr
from batchlab.train.schedules import run_length, schedule_fn, steps_per_epoch

# --------------------------------------------------------------------------- the probe


@dataclass(frozen=True)
class NoiseScaleResult(Plottable):
    """B_simple over the probe's steps: ratio of plain means with its bootstrap interval
    (``b_simple``, ``ci_low``, ``ci_high``), the final EMA (``b_simple_ema``), and the trace."""

    KIND: ClassVar[str] = "noise_scale"

    b_simple: float
    ci_low: float
    ci_high: float
    b_simple_ema: float
    batch_size: int
    micro_batches: int
    steps: list[int]  # 1-based optimizer step after which each trace value was taken
    trace_b_simple: list[float]  # EMA estimate
    trace_loss: list[float]
    g2: list[float]
    trace_cov: list[float]
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe (non-finite floats become None) for ``Store.add_probe(..., "noise_scale", ...)``."""
        return json_safe(self)


def _unmeasurable(micro_batches: int, batch_size: int, steps: int) -> str | None:
    """Why B_simple cannot be measured with these sizes, naming the fields to change; None when
    it can. It compares the gradient of each of ``micro_batches`` parts of a batch with the
    batch's, so it needs at least 2 parts of at least 1 example each, over at least 2 steps."""
    if micro_batches < 2:
        return (f"the noise scale compares each batch's gradient with those of its parts, so it "
                f"needs at least 2 micro-batches; got {micro_batches} (micro_batches=).")
    if batch_size < micro_batches:
        fix = (f"raise train.batch_size to at least {micro_batches}"
               + (f" or lower train.noise_scale_micro_batches to {batch_size}" if batch_size >= 2 else ""))
        return (f"the noise scale splits each batch into {micro_batches} micro-batches "
                f"(train.noise_scale_micro_batches), but train.batch_size = {batch_size} holds "
                f"fewer examples; {fix}.")
    if steps < 2:
        return f"the noise scale needs at least 2 steps to measure over; got {steps} (steps=)."
    return None


def measure_noise_scale(
    config: RunConfig, *, steps: int = 200, micro_batches: int | None = None, ema: float = 0.95,
    level: float = 0.95, n_boot: int = 1000, seed: int | None = None,
    model: nn.Module | None = None, data: LoadedData | None = None, inputs: RunInputs | None = None,
) -> NoiseScaleResult:
    """Train a fresh copy of the model for ``steps`` steps exactly as ``train_run`` would
    (the config's optimizer, scaled LR and schedule over the run's own length), measuring
    B_simple at every step. Full batches only (the partial last batch of a pass is skipped).

    ``micro_batches`` defaults to ``config.train.noise_scale_micro_batches``. ``model``: probe
    a private copy (never modified). ``inputs``: the caller's data/model/loss/optimizer
    builders (the gradients are of ``inputs.loss_fn``). Raises ProbeError for a batch larger than the data or
    smaller than ``micro_batches``, SpecError when ``train.lr`` is still "auto".
    """
    t = config.train
    k = micro_batches or t.noise_scale_micro_batches
    if (why := _unmeasurable(k, t.batch_size, steps)) is not None:
        raise ProbeError(why)
    base_lr = scaled_lr(t.numeric_lr(), t.batch_size, t.scale_lr, t.base_batch_size)
    meter = NoiseMeter(k, ema=ema, loss_fn=(inputs or RunInputs()).loss_fn)
    trace_steps: list[int] = []
    trace_b: list[float] = []
    trace_loss: list[float] = []
    with isolated_rng():
        setup = fresh_setup(config, data, seed=seed, model=model, inputs=inputs)
        n = setup.n_train
        order = torch.Generator().manual_seed(setup.seed)
        batches = setup.batches(t.batch_size, order)  # ProbeError: a batch larger than the data
        spe = steps_per_epoch(n, t.batch_size)
        total = run_length(t.steps, t.epochs, spe)
        lr_at = schedule_fn(t.schedule, base_lr, total, spe)
        net, optimizer = setup.model, setup.make_optimizer(base_lr)
        net.train()
        for step in range(steps):
            xb, yb = next(batches)
            meter.measure(net, xb, yb)
            set_lr(optimizer, lr_at(min(step, total - 1)))
            loss = setup.loss_fn(net(xb), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            trace_steps.append(step + 1)
            trace_b.append(meter.estimator.b_simple_ema())
            trace_loss.append(loss.item())
            if not math.isfinite(trace_loss[-1]):
                break  # diverged: the estimates so far stand, the reason says so
    e = meter.estimator
    lo, hi = bootstrap_ci(e.g2, e.trace, level=level, n_boot=n_boot, seed=setup.seed)
    b = e.b_simple_mean()
    if not math.isfinite(trace_loss[-1]):
        reason = (f"training diverged at step {trace_steps[-1]}: lower train.lr; the estimate "
                  "uses the steps before")
    elif math.isnan(b):
        reason = ("the mean |G|^2 estimate is not positive: gradient noise swamps the signal; "
                  "measure over more steps or a larger batch")
    else:
        reason = f"ratio of means over {e.count} steps, {level:.0%} bootstrap interval over steps"
    return NoiseScaleResult(b, lo, hi, e.b_simple_ema(), t.batch_size, k, trace_steps, trace_b,
                            trace_loss, list(e.g2), list(e.trace), reason)
