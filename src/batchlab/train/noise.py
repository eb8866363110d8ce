"""The gradient noise scale B_simple = tr(Sigma) / |G|^2 (McCandlish et al. 2018, appendix A).

At one step, split the batch of B_big examples into k micro-batches of B_small = B_big / k.
With g_i the mean gradient of micro-batch i (n_i examples, weight w_i = n_i / B_big):

    |G_small|^2 = sum_i w_i |g_i|^2      (E = |G|^2 + tr(Sigma) / B_small, exactly, even for
                                           unequal micro-batches, because B_small = B_big / k)
    G_big       = sum_i w_i g_i           (the full batch's mean gradient)
    |G|^2      ~ (B_big |G_big|^2 - B_small |G_small|^2) / (B_big - B_small)
    tr(Sigma)  ~ (|G_small|^2 - |G_big|^2) / (1/B_small - 1/B_big)

Both estimates are unbiased but very noisy per step (|G|^2 often comes out negative), so
numerators and denominators are averaged separately over steps, as an EMA (the current value
while training moves) and as plain means, and only then divided. The bootstrap confidence
interval resamples the per-step (|G|^2, tr(Sigma)) pairs and takes the ratio of means; it
reflects step-to-step noise around the average over the measured steps, not drift.

Measuring is a *side computation* (``NoiseMeter.measure``): the micro-batch gradients come
from ``torch.autograd.grad`` (``.grad`` is never touched), BatchNorm-style buffers are restored
and torch's RNG is forked, so the normal full-batch step that follows is bit-for-bit the one
it would be without the measurement. BatchNorm layers see micro-batch statistics during the
measurement (as ghost batch norm would).

Cost: a measurement is k small forward/backward passes, 1.0-2.6x a normal step on CPU (near
1x for conv nets at batch 128, most for tiny MLPs whose steps are all per-call overhead).
A normal run therefore measures every ``train.noise_scale_every`` = 50 steps: at 25 the
overhead was +4 % for LeNet-5 on digits but +14 % for the tiny MNIST-1D CNN, at 50 it was
+0.4 % and +6 % (bench/probe_cost.py); use the probe, which measures every step, for a
denser estimate.

This core sits in ``train/`` because both the loop (``train.measure_noise_scale``, via
:func:`noise_meter`) and the probe (``probes/noise_scale.py``) use it: the trainer never
imports ``probes/``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from batchlab.spec import TrainSpec
from batchlab.train.inputs import LossFn

# --------------------------------------------------------------------------- pure estimator


def step_estimates(g_small_sq: float, g_big_sq: float, b_small: float, b_big: float) -> tuple[float, float]:
    """Unbiased one-step estimates ``(|G|^2, tr(Sigma))`` from the two squared gradient norms."""
    if not 0 < b_small < b_big:
        raise ValueError(f"need 0 < b_small < b_big, got {b_small} and {b_big}")
    g2 = (b_big * g_big_sq - b_small * g_small_sq) / (b_big - b_small)
    trace = (g_small_sq - g_big_sq) / (1 / b_small - 1 / b_big)
    return g2, trace


def ratio(trace: float, g2: float) -> float:
    """``trace / g2``; NaN when the signal estimate ``g2`` is not positive (noise dominates)."""
    return trace / g2 if g2 > 0 else math.nan


def bootstrap_ci(
    g2: Sequence[float], trace: Sequence[float], *, level: float = 0.95, n_boot: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``mean(trace) / mean(g2)`` over resampled steps.

    Resamples with a seeded numpy generator (same data and seed, same interval). A resample
    whose mean |G|^2 is not positive counts as +inf (all noise). NaN, NaN with < 2 steps.
    """
    g = np.asarray(g2, dtype=float)
    t = np.asarray(trace, dtype=float)
    if len(g) < 2:
        return math.nan, math.nan
    idx = np.random.default_rng(seed).integers(0, len(g), size=(n_boot, len(g)))
    num, den = t[idx].mean(axis=1), g[idx].mean(axis=1)
    ratios = np.sort(np.where(den > 0, num / np.where(den > 0, den, 1.0), np.inf))
    tail = (1 - level) / 2
    lo = ratios[min(n_boot - 1, math.floor(tail * n_boot))]
    hi = ratios[max(0, math.ceil((1 - tail) * n_boot) - 1)]
    return float(lo), float(hi)


@dataclass
class NoiseScaleEstimator:
    """Accumulates per-step ``(|G|^2, tr(Sigma))`` estimates; B_simple as EMA and plain ratio.

    ``ema`` is the decay per *measurement* (0.95: about the last 20 measurements), with bias
    correction. ``state()``/``from_state`` round-trip it through a checkpoint.
    """

    ema: float = 0.95
    g2: list[float] = field(default_factory=list)
    trace: list[float] = field(default_factory=list)
    _ema_g2: float = 0.0
    _ema_trace: float = 0.0

    def update(self, g2: float, trace: float) -> None:
        self.g2.append(g2)
        self.trace.append(trace)
        self._ema_g2 = self.ema * self._ema_g2 + (1 - self.ema) * g2
        self._ema_trace = self.ema * self._ema_trace + (1 - self.ema) * trace

    @property
    def count(self) -> int:
        return len(self.g2)

    def b_simple_ema(self) -> float:
        # the bias corrections of numerator and denominator are equal and cancel in the ratio
        return ratio(self._ema_trace, self._ema_g2) if self.count else math.nan

    def b_simple_mean(self) -> float:
        return ratio(float(np.mean(self.trace)), float(np.mean(self.g2))) if self.count else math.nan

    def state(self) -> dict[str, Any]:
        return {"ema": self.ema, "g2": list(self.g2), "trace": list(self.trace),
                "ema_g2": self._ema_g2, "ema_trace": self._ema_trace}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> NoiseScaleEstimator:
        return cls(state["ema"], list(state["g2"]), list(state["trace"]), state["ema_g2"], state["ema_trace"])


# --------------------------------------------------------------------------- gradients


def micro_batch_norms(
    model: nn.Module, loss_fn: LossFn, x: torch.Tensor, y: torch.Tensor, micro_batches: int
) -> tuple[float, float, float, float]:
    """``(|G_small|^2, |G_big|^2, B_small, B_big)`` at the model's current weights.

    Splits ``(x, y)`` into ``min(micro_batches, len(y))`` near-equal micro-batches (at least
    2). Uses ``torch.autograd.grad``, so parameters' ``.grad`` are left as they were; the
    forward passes do run, so buffers and RNG change (``NoiseMeter`` restores them).
    """
    n = len(y)
    k = min(micro_batches, n)
    if k < 2:
        raise ValueError(f"the noise scale needs a batch of at least 2 examples, got {n}")
    params = [p for p in model.parameters() if p.requires_grad]
    # One flat vector per micro-batch: three tensor ops each instead of several per parameter
    # (on small models the per-op overhead, not the arithmetic, is the cost).
    g_big = torch.zeros(sum(p.numel() for p in params), device=x.device, dtype=params[0].dtype)
    squares = []
    for xs, ys in zip(torch.tensor_split(x, k), torch.tensor_split(y, k), strict=True):
        w = len(ys) / n
        grads = torch.autograd.grad(loss_fn(model(xs), ys), params, materialize_grads=True)
        flat = torch.cat([g.reshape(-1) for g in grads])
        squares.append(w * flat.dot(flat))
        g_big.add_(flat, alpha=w)
    both = torch.stack([torch.stack(squares).sum(), g_big.dot(g_big)]).tolist()  # one sync
    return both[0], both[1], n / k, float(n)


@contextmanager
def preserved(model: nn.Module, device: torch.device) -> Iterator[None]:
    """Restore the model's buffers (e.g. BatchNorm running stats) and torch's RNG on exit."""
    saved = [b.detach().clone() for b in model.buffers()]
    if device.type == "cuda":
        devices = [device.index if device.index is not None else torch.cuda.current_device()]
    else:
        devices = []
    with torch.random.fork_rng(devices=devices):
        yield
    with torch.no_grad():
        for b, s in zip(model.buffers(), saved, strict=True):
            b.copy_(s)


class NoiseMeter:
    """Measures B_simple beside training without changing it (see the module doc)."""

    def __init__(self, micro_batches: int, *, loss_fn: LossFn = F.cross_entropy, ema: float = 0.95,
                 estimator: NoiseScaleEstimator | None = None) -> None:
        self.micro_batches = micro_batches
        self.loss_fn = loss_fn
        self.estimator = estimator if estimator is not None else NoiseScaleEstimator(ema)

    def measure(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float] | None:
        """Add this batch's ``(|G|^2, tr(Sigma))`` estimate; None (nothing added) for a batch
        too small to split. The model's weights, grads, buffers and torch's RNG are unchanged."""
        if len(y) < 2:
            return None
        with preserved(model, x.device):
            small, big, b_small, b_big = micro_batch_norms(model, self.loss_fn, x, y, self.micro_batches)
        g2, trace = step_estimates(small, big, b_small, b_big)
        self.estimator.update(g2, trace)
        return g2, trace

    def summary(self, *, level: float = 0.95, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
        """Run-summary entries: EMA and whole-run estimates, bootstrap interval, count."""
        e = self.estimator
        lo, hi = bootstrap_ci(e.g2, e.trace, level=level, n_boot=n_boot, seed=seed)
        return {"noise_scale": e.b_simple_ema(), "noise_scale_mean": e.b_simple_mean(),
                "noise_scale_ci": [lo, hi], "noise_scale_measurements": e.count}


def noise_meter(t: TrainSpec, state: dict[str, Any] | None = None) -> NoiseMeter | None:
    """The loop's gradient-noise-scale meter when ``t.measure_noise_scale``, else None.

    Every ``t.noise_scale_every`` steps the loop measures B_simple from
    ``t.noise_scale_micro_batches`` micro-batch gradients *beside* the step, so the run's
    losses and updates are bit-for-bit those of the same run without the option; the cost is
    one extra forward/backward per measured step. ``state``: an estimator's ``state()`` from a
    checkpoint, to continue its averages after a resume.
    """
    if not t.measure_noise_scale:
        return None
    estimator = NoiseScaleEstimator.from_state(state) if state is not None else None
    return NoiseMeter(t.noise_scale_micro_batches, estimator=estimator)
