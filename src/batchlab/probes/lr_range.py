"""The LR range test (Leslie Smith 2015/2017): one fresh copy of the model trained while the
LR grows exponentially, its loss recorded at every step.

``lr_range_test``: train a fresh copy of the model for ``steps`` optimizer steps (one batch
each, the config's optimizer, momentum and weight decay, no schedule) while the LR grows
exponentially from ``start_lr`` to ``end_lr``; record the loss of every step and its EMA with
bias correction (``smoothing`` = 0.98, as fastai); stop once the smoothed loss exceeds
``diverge_factor`` x its minimum or a loss is not finite. The recorded loss of step i is
measured on the weights reached with the LRs before it, then the update uses ``lrs[i]``.

Cost: ``steps`` optimizer steps at most (fewer when the loss diverges early); no evaluation
passes. ``batchlab.probes.lr_search.lr_find`` repeats it over seeds and batch sizes and turns
the curves into an LR.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from batchlab.data.pipeline import LoadedData
from batchlab.probes.common import ProbeError, fresh_setup, isolated_rng
from batchlab.probes.suggest import SKIP_START, Suggestion, suggest_all
from batchlab.spec import RunConfig
from batchlab.train.inputs import RunInputs
from batchlab.train.optim import set_lr


def default_smoothing(steps: int) -> float:
    """fastai's 0.98 for a test of 100 steps or more; less for a shorter test, whose EMA would
    otherwise still be dominated by its first losses when it ends."""
    return min(0.98, 1 - 2 / steps)


@dataclass(frozen=True)
class RangeTestResult:
    """One range test: the LR of every step, its raw and smoothed loss, and why it stopped
    early (None when it ran all ``steps``)."""

    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    stopped_early: str | None
    batch_size: int
    seed: int
    steps: int  # planned; len(lrs) is what ran

    def suggestions(self) -> dict[str, Suggestion]:
        """Every strategy's suggestion on the smoothed loss."""
        return suggest_all(self.lrs, self.smoothed)


def lr_ramp(start_lr: float, end_lr: float, steps: int) -> np.ndarray:
    """``steps`` LRs growing exponentially from ``start_lr`` to ``end_lr`` (both included)."""
    return start_lr * (end_lr / start_lr) ** (np.arange(steps) / max(steps - 1, 1))


def check_range(start_lr: float, end_lr: float, steps: int, smoothing: float, diverge: float) -> None:
    if not 0 < start_lr < end_lr or not math.isfinite(end_lr):
        raise ProbeError(f"the LR range must satisfy 0 < start_lr < end_lr, got {start_lr:g} to {end_lr:g}.")
    if steps < 10:
        raise ProbeError(f"an LR range test needs at least 10 steps to suggest anything, got {steps}.")
    if not 0 <= smoothing < 1:
        raise ProbeError(f"smoothing must be in [0, 1), got {smoothing}.")
    if not diverge > 1:
        raise ProbeError(f"diverge_factor must be > 1, got {diverge}.")


def lr_range_test(
    config: RunConfig, *, start_lr: float = 1e-7, end_lr: float = 10.0, steps: int = 100,
    smoothing: float = 0.98, diverge_factor: float = 4.0, seed: int | None = None,
    model: nn.Module | None = None, data: LoadedData | None = None, inputs: RunInputs | None = None,
) -> RangeTestResult:
    """Run one range test at ``config.train.batch_size`` (see the module doc).

    ``seed`` (default ``config.train.seed``) seeds the model, dropout and batch order.
    ``model``: probe a private copy of this module (it is never modified). ``data``: the
    already loaded ``config.data``. ``inputs``: the caller's data/model/loss/optimizer builders
    (the Python API's objects). Raises ProbeError for an impossible range, a batch larger
    than the data, or a loss that blows up within the first ``max(5, 10 % of steps)`` steps.
    """
    check_range(start_lr, end_lr, steps, smoothing, diverge_factor)
    ramp = lr_ramp(start_lr, end_lr, steps)
    batch = config.train.batch_size
    lrs: list[float] = []
    raw: list[float] = []
    smooth: list[float] = []
    stopped: str | None = None
    with isolated_rng():
        setup = fresh_setup(config, data, seed=seed, model=model, inputs=inputs)
        net, optimizer = setup.model, setup.make_optimizer(float(ramp[0]))
        order = torch.Generator().manual_seed(setup.seed)  # batch order and augmentation
        batches = setup.batches(batch, order)
        net.train()
        avg, best = 0.0, math.inf
        for i, lr in enumerate(ramp.tolist()):
            set_lr(optimizer, lr)
            xb, yb = next(batches)
            loss = setup.loss_fn(net(xb), yb)
            value = loss.item()  # needed every step to stop on divergence
            avg = smoothing * avg + (1 - smoothing) * value
            smoothed = avg / (1 - smoothing ** (i + 1))
            lrs.append(lr)
            raw.append(value)
            smooth.append(smoothed)
            if not math.isfinite(smoothed):
                stopped = f"non-finite loss at lr {lr:.3g}"
            elif smoothed > diverge_factor * best:
                stopped = (f"smoothed loss {smoothed:.4g} exceeded {diverge_factor:g} x its "
                           f"minimum {best:.4g} at lr {lr:.3g}")
            if stopped:
                break
            best = min(best, smoothed)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    at_once = max(5, math.ceil(SKIP_START * steps))
    if stopped and len(lrs) <= at_once:
        raise ProbeError(
            f"the LR range test diverged at once ({stopped}, step {len(lrs)} of {steps}): the "
            f"range starts too high for this model and data. Lower its start (now {start_lr:g}: "
            "start_lr= in Python, --start-lr in the CLI); if it already is tiny, check the data "
            "(data.normalize) and that the model trains at all at a small LR.")
    return RangeTestResult(lrs, raw, smooth, stopped, batch, setup.seed, steps)
