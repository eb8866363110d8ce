"""Confirm LR candidates with short trial runs: the practitioner's "try a few LRs for an epoch".

No rule on the range-test curve alone picks a good LR across models, optimizers and batch
sizes (measured in ``bench/judgement.py``: fastai's valley landed within 3x of a plain grid's
best LR in none of its cases, the steepest slope in about half, and each rule fails
differently). What the curve *does* tell reliably is the scale: the smoothed loss is lowest at
``lr_min``, LRs far below it barely train and LRs above it diverge. So the ``trial`` strategy

1. takes ``lr_min`` from the range test (median over its repeats) as the anchor;
2. proposes candidates on a half-decade ladder below it, ``lr_min * 10**(-k/2)`` for
   ``k = 0 .. CANDIDATES-1`` (two decades: Adam's best LR lies far below the curve's minimum);
3. trains a fresh copy of the model at each candidate, from the same initialisation and batch
   order, for the same short budget (``trial_steps``: about an epoch, never longer than the
   user's run), with a constant LR;
4. rejects a candidate whose loss turns non-finite or that learned nothing (validation loss no
   lower than at initialisation *and* accuracy no better than chance: a BatchNorm network at a
   high LR can be far better than chance while its early validation loss is still high);
5. picks the highest validation accuracy; candidates within one standard error of it (the
   binomial error of the validation set) are a tie, broken by the lower validation loss
   (without an accuracy, the loss alone decides);
6. refines the pick by the vertex of a parabola through it and its two neighbours in
   (log lr, validation loss), at most half a ladder step away, so the answer is not limited
   to the ladder's half-decade steps; but when the next candidate up was rejected, the pick
   sits within one step of the LRs that break training, and a run many times longer than the
   trial may cross that edge (short trials favour large LRs), so it moves half a step *down*
   instead.

Its cost is ``CANDIDATES x trial_steps`` optimizer steps plus one evaluation per candidate on
top of the range test; ``lr_find`` reports the total in epochs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from batchlab.data.pipeline import LoadedData
from batchlab.probes.common import ProbeSetup, fresh_setup, isolated_rng
from batchlab.spec import RunConfig
from batchlab.train.inputs import RunInputs
from batchlab.train.loop import evaluate_batches
from batchlab.train.optim import set_lr
from batchlab.train.schedules import run_length, steps_per_epoch

CANDIDATES = 5  # half-decade ladder: lr_min, lr_min/3.2, ..., lr_min/100
LADDER = 10 ** 0.5  # ratio between neighbouring candidates
MIN_TRIAL_STEPS = 30  # below this a trial ranks LRs by noise (tiny epochs at large batches)
MAX_TRIAL_STEPS = 300  # caps the cost on large data sets, where an epoch is many steps
LEARNED = 0.98  # a validation loss above this fraction of the initial one learned nothing
CHANCE_SE = 2.0  # an accuracy within this many standard errors of chance learned nothing


@dataclass(frozen=True)
class Trial:
    """One candidate LR trained for ``steps`` steps: where it ended, or why it was rejected."""

    lr: float
    steps: int
    val_loss: float
    val_acc: float
    rejected: str | None  # None when the candidate trained


@dataclass(frozen=True)
class TrialOutcome:
    """The confirmed LR (None when every candidate was rejected), the reason, every trial,
    the validation loss at initialisation and the optimizer steps the trials cost."""

    lr: float | None
    reason: str
    trials: list[Trial]
    initial_val_loss: float
    steps: int


@dataclass(frozen=True)
class Baseline:
    """What "learned nothing" means on this validation set: the untrained model's loss and the
    better of its accuracy and the majority class's frequency, and the set's size."""

    val_loss: float
    chance_acc: float
    n_val: int

    def standard_error(self, acc: float) -> float:
        """Binomial standard error of an accuracy measured on ``n_val`` examples."""
        return math.sqrt(max(acc * (1 - acc), 1e-12) / max(self.n_val, 1))

    def learned(self, val_loss: float, val_acc: float) -> bool:
        """Lower loss than at initialisation, or accuracy clearly above chance."""
        if val_loss < LEARNED * self.val_loss:
            return True
        c = self.chance_acc
        return math.isfinite(val_acc) and val_acc > c + CHANCE_SE * self.standard_error(c)


def trial_steps(n_train: int, batch_size: int, train_steps: int | None, train_epochs: int | None) -> int:
    """Steps per trial: about one epoch, at least MIN_TRIAL_STEPS and at most MAX_TRIAL_STEPS,
    and never more than the run the user asked for (a trial longer than the run ranks LRs by a
    horizon the run never reaches)."""
    spe = steps_per_epoch(n_train, batch_size)
    wanted = min(max(spe, MIN_TRIAL_STEPS), MAX_TRIAL_STEPS)
    return max(1, min(wanted, run_length(train_steps, train_epochs, spe)))


def ladder(anchor: float, n: int = CANDIDATES, ratio: float = LADDER) -> list[float]:
    """``n`` LRs from ``anchor`` down by ``ratio`` each, in increasing order."""
    return [anchor / ratio ** k for k in range(n - 1, -1, -1)]


def refine(trials: Sequence[Trial], best: int) -> float:
    """Half a ladder step below the best trial when the next one up was rejected; else the
    vertex of the parabola through the best trial and its two neighbours in (log lr, val loss),
    limited to half a ladder step around the best; the best's own LR when a neighbour is
    missing or rejected, or the three points do not curve upwards (pure)."""
    lr = trials[best].lr
    if best + 1 < len(trials) and trials[best + 1].rejected:
        return lr / math.sqrt(LADDER)  # next to the edge of what trains: step back from it
    if best == 0 or best == len(trials) - 1:
        return lr
    trio = trials[best - 1 : best + 2]
    if any(t.rejected for t in trio):
        return lr
    x = [math.log10(t.lr) for t in trio]
    y = [t.val_loss for t in trio]
    # the trio is equally spaced in log lr, so the vertex has a closed form
    h = x[1] - x[0]
    curvature = y[0] - 2 * y[1] + y[2]
    if curvature <= 0:
        return lr
    shift = h * (y[0] - y[2]) / (2 * curvature)
    shift = max(-h / 2, min(h / 2, shift))
    return 10 ** (x[1] + shift)


def validation_loss(setup: ProbeSetup) -> tuple[float, float | None]:
    """``setup``'s model on the validation set: mean loss and accuracy (None: a regression)."""
    return evaluate_batches(setup.model, setup.val_batches(), setup.loss_fn, setup.device)


def run_trial(config: RunConfig, data: LoadedData, lr: float, steps: int, seed: int,
              model: nn.Module | None, baseline: Baseline, inputs: RunInputs | None = None,
              factor: Callable[[int], float] | None = None) -> Trial:
    """Train a fresh copy at ``lr`` for ``steps`` steps; evaluate on validation. The LR is
    constant, or ``lr * factor(step)`` (a schedule's multiplier) when ``factor`` is given."""
    with isolated_rng():
        setup = fresh_setup(config, data, seed=seed, model=model, inputs=inputs)
        net, optimizer = setup.model, setup.make_optimizer(lr)
        order = torch.Generator().manual_seed(setup.seed)
        batches = setup.batches(config.train.batch_size, order)
        net.train()
        for step in range(steps):
            if factor is not None:
                set_lr(optimizer, lr * factor(step))
            xb, yb = next(batches)
            loss = setup.loss_fn(net(xb), yb)
            if not math.isfinite(loss.item()):
                return Trial(lr, step, math.nan, math.nan, f"the loss turned non-finite at step {step + 1}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        del batches  # a streamed loader's processes end before the evaluation's start
        val_loss, acc = validation_loss(setup)
    val_acc = math.nan if acc is None else acc  # a regression: judged on the loss alone
    if not math.isfinite(val_loss):
        return Trial(lr, steps, val_loss, val_acc, "the validation loss is not finite")
    if not baseline.learned(val_loss, val_acc):
        return Trial(lr, steps, val_loss, val_acc,
                     f"learned nothing: validation loss {val_loss:.3g} (at initialisation "
                     f"{baseline.val_loss:.3g})" + (f", accuracy {val_acc:.1%} (chance "
                     f"{baseline.chance_acc:.1%})" if math.isfinite(val_acc) else ""))
    return Trial(lr, steps, val_loss, val_acc, None)


def baseline(config: RunConfig, data: LoadedData, seed: int, model: nn.Module | None,
             inputs: RunInputs | None = None) -> Baseline:
    """The untrained model every trial starts from, on the validation set (chance accuracy
    NaN for a regression: only the loss can show learning)."""
    with isolated_rng():
        setup = fresh_setup(config, data, seed=seed, model=model, inputs=inputs)
        loss, acc = validation_loss(setup)
    if acc is None:
        return Baseline(loss, math.nan, len(data.val_y))
    majority = float(torch.bincount(data.val_y).max()) / max(len(data.val_y), 1)
    return Baseline(loss, max(acc, majority), len(data.val_y))


def choose(trials: Sequence[Trial], base: Baseline) -> int | None:
    """Index of the best kept trial (see the module doc, step 5); None when none was kept."""
    kept = [i for i, t in enumerate(trials) if t.rejected is None]
    if not kept:
        return None
    with_acc = [i for i in kept if math.isfinite(trials[i].val_acc)]
    if with_acc:
        top = max(trials[i].val_acc for i in with_acc)
        kept = [i for i in with_acc if trials[i].val_acc >= top - base.standard_error(top)]
    return min(kept, key=lambda i: trials[i].val_loss)


def confirm_lr(config: RunConfig, data: LoadedData, anchor: float, *, seed: int | None = None,
               model: nn.Module | None = None, steps: int | None = None,
               inputs: RunInputs | None = None) -> TrialOutcome:
    """Train the ladder of candidates below ``anchor`` and pick the best (see the module doc).

    ``steps`` per trial defaults to :func:`trial_steps` of the config's data size, batch size
    and run length. Seeds default to ``config.train.seed``: every candidate starts from the
    same weights and sees the same batches, so they differ only in LR.
    """
    t = config.train
    seed = t.seed if seed is None else seed
    n = steps or trial_steps(len(data.train_y), t.batch_size, t.steps, t.epochs)
    base = baseline(config, data, seed, model, inputs)
    start = base.val_loss
    trials = [run_trial(config, data, lr, n, seed, model, base, inputs) for lr in ladder(anchor)]
    cost = sum(tr.steps for tr in trials)
    best = choose(trials, base)
    if best is None:
        return TrialOutcome(None, (
            f"every candidate LR from {trials[0].lr:.3g} to {trials[-1].lr:.3g} was rejected in "
            f"{n}-step trials (first: {trials[0].rejected}); the model does not train at these "
            "LRs: check the data (data.normalize) and the model, or set train.lr yourself."),
            trials, start, cost)
    lr = refine(trials, best)
    tb = trials[best]
    return TrialOutcome(lr, (
        f"best of {len(trials)} {n}-step trials at LRs from {trials[-1].lr:.3g} (the range test's "
        f"loss minimum) down to {trials[0].lr:.3g}: "
        + (f"val acc {tb.val_acc:.1%} (val loss {tb.val_loss:.3g})" if math.isfinite(tb.val_acc)
           else f"val loss {tb.val_loss:.3g}")  # a regression records no accuracy
        + f" at lr {tb.lr:.3g}"
        + (f", refined to {lr:.3g} between its neighbours" if lr != tb.lr else "")), trials, start, cost)
