"""``lr_find``: the LR to use, by one of several strategies, over seeds and batch sizes.

Per batch size it reports the chosen strategy's LR (for the curve rules: the median over
``repeats`` range tests, with its min/max), every strategy's median (flagging a disagreement
larger than 3x) and, with two or more batch sizes, the exponent alpha of ``lr* ~ B**alpha``.

Cost of the range tests: ``repeats x len(batch_sizes) x steps`` optimizer steps at most (100
each by default, fewer when the loss diverges early); no evaluation passes. The default
``horizon`` strategy runs no range test unless asked (``repeats``): its miniatures cost at
most ``budget`` of one run per batch size (half by default), more only on runs so short that a
miniature cannot shrink further (``lr_horizon``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from torch import nn

from batchlab.data.pipeline import LoadedData
from batchlab.probes.common import ProbeError, check_batch_fits, load_probe_data
from batchlab.probes.lr_horizon import BUDGET as HORIZON_BUDGET
from batchlab.probes.lr_horizon import HorizonOutcome, horizon_lr
from batchlab.probes.lr_range import RangeTestResult, check_range, default_smoothing, lr_range_test
from batchlab.probes.lr_trial import Trial, TrialOutcome, confirm_lr
from batchlab.probes.plotting import Plottable
from batchlab.probes.suggest import (
    DEFAULT_CURVE_STRATEGY,
    STRATEGIES,
    Suggestion,
    disagreement,
    fit_power_law,
    loss_minimum,
    summarize,
)
from batchlab.spec import RunConfig
from batchlab.train.inputs import RunInputs
from batchlab.train.schedules import run_length, steps_per_epoch

HORIZON = "horizon"
TRIAL = "trial"
#: every strategy ``lr_find`` accepts: miniatures of the run judged by successive halving
#: (``batchlab.probes.lr_horizon``), short constant-LR trials below the curve's minimum
#: (``batchlab.probes.lr_trial``), or a rule on the curve alone (``batchlab.probes.suggest``)
LR_STRATEGIES = (HORIZON, TRIAL, *STRATEGIES)
#: measured best on the held-out half of bench/judgement.py (see the README)
DEFAULT_STRATEGY = HORIZON
#: range tests per batch size when not given: curve rules take the median of 3 noisy curves;
#: the trials confirm the candidates themselves, so one curve to anchor them is enough; the
#: horizon ladder needs none (ask for one to see the curve beside the answer: it costs steps)
DEFAULT_REPEATS = {TRIAL: 1, HORIZON: 0}
CURVE_REPEATS = 3
#: a range test asked of the horizon strategy lasts a twentieth of the run, within these
#: bounds: it is shown beside the answer, not used to pick it, and its steps come out of the
#: probe's budget of half a run
HORIZON_RANGE_STEPS = (20, 100)


def default_repeats(strategy: str) -> int:
    return DEFAULT_REPEATS.get(strategy, CURVE_REPEATS)


def default_range_steps(strategy: str, config: RunConfig, n_train: int) -> int:
    """Range-test steps when not given: 100, or for ``horizon`` a twentieth of the run within
    HORIZON_RANGE_STEPS."""
    if strategy != HORIZON:
        return 100
    t = config.train
    total = run_length(t.steps, t.epochs, steps_per_epoch(n_train, t.batch_size))
    lo, hi = HORIZON_RANGE_STEPS
    return max(lo, min(hi, total // 20))


@dataclass(frozen=True)
class BatchFind:
    """``lr_find`` at one batch size: the chosen strategy's median over repeats and its
    range, every strategy's median, and the strategies that disagree by more than 3x."""

    batch_size: int
    lr: float | None
    lr_min: float | None
    lr_max: float | None
    reason: str
    by_strategy: dict[str, float | None]
    disagreement: dict[str, float]
    tests: list[RangeTestResult]
    suggestions: list[Suggestion]  # the chosen strategy's, one per repeat ("trial": the curve default's)
    trials: list[Trial] = field(default_factory=list)  # the trial strategies' candidates
    cost_steps: int = 0  # optimizer steps the range tests and trials took
    cost_epochs: float = 0.0  # the same in epochs of the training set
    confidence: str | None = None  # "horizon": high | medium | low
    tried: list[str] = field(default_factory=list)  # "horizon": what it did beyond the ladder
    rung_steps: list[int] = field(default_factory=list)  # "horizon": each rung's trial length


@dataclass(frozen=True)
class LrFindResult(Plottable):
    """Suggested LRs per batch size and the fitted exponent of lr* ~ B**alpha."""

    KIND: ClassVar[str] = "lr_range"

    strategy: str
    batch_size: int  # the one ``suggested_lr`` is for: config's batch size if probed, else first
    suggested_lr: float | None
    reason: str
    per_batch: list[BatchFind]
    alpha: float | None
    alpha_prefactor: float | None
    alpha_reason: str
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def cost_epochs(self) -> float:
        """What the whole probe cost, in epochs of the training set (all batch sizes)."""
        return sum(b.cost_epochs for b in self.per_batch)

    def lr_for(self, batch_size: int) -> float | None:
        return next((b.lr for b in self.per_batch if b.batch_size == batch_size), None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe (non-finite floats become None) for ``Store.add_probe(..., "lr_range", ...)``.

        ``lrs``/``losses``: the smoothed curve of the first repeat at ``batch_size`` (empty
        without a range test: ``horizon`` runs none unless asked); every curve is under
        ``per_batch[i]["repeats"]``, every miniature under ``per_batch[i]["trials"]``.
        """
        tests = next(b for b in self.per_batch if b.batch_size == self.batch_size).tests
        first_lrs, first_losses = (tests[0].lrs, tests[0].smoothed) if tests else ([], [])
        per_batch = [{
            "batch_size": b.batch_size, "suggested_lr": b.lr, "lr_min": b.lr_min,
            "lr_max": b.lr_max, "reason": b.reason, "by_strategy": b.by_strategy,
            "disagreement": b.disagreement, "cost_steps": b.cost_steps,
            "cost_epochs": b.cost_epochs, "confidence": b.confidence, "tried": b.tried,
            "rung_steps": b.rung_steps,
            "trials": [{"lr": tr.lr, "steps": tr.steps, "val_loss": tr.val_loss,
                        "val_acc": tr.val_acc, "rejected": tr.rejected} for tr in b.trials],
            "repeats": [{"seed": t.seed, "suggested_lr": s.lr, "reason": s.reason,
                         "stopped_early": t.stopped_early, "lrs": t.lrs, "losses": t.smoothed,
                         "raw_losses": t.losses} for t, s in zip(b.tests, b.suggestions, strict=True)],
        } for b in self.per_batch]
        out = {
            "strategy": self.strategy, "batch_size": self.batch_size,
            "suggested_lr": self.suggested_lr, "reason": self.reason,
            "lrs": first_lrs, "losses": first_losses,
            "batch_sizes": [b.batch_size for b in self.per_batch],
            "suggestions": {str(b.batch_size): b.lr for b in self.per_batch},
            "alpha": self.alpha, "alpha_prefactor": self.alpha_prefactor,
            "alpha_reason": self.alpha_reason, "per_batch": per_batch, "settings": self.settings,
            "cost_epochs": self.cost_epochs,
        }
        return json.loads(json.dumps(out, default=float), parse_constant=lambda _: None)


def with_batch_size(config: RunConfig, batch_size: int) -> RunConfig:
    return config.model_copy(update={"train": config.train.model_copy(update={"batch_size": batch_size})})


def _find_horizon(config: RunConfig, n_train: int, repeats: int,
                  test: Callable[..., RangeTestResult],
                  horizon: Callable[[RunConfig, int, int], HorizonOutcome],
                  budget: float = HORIZON_BUDGET) -> BatchFind:
    """``horizon`` at ``config``'s batch size: successive halving over miniatures of the run.
    ``repeats`` range tests (none by default) are shown beside the answer and compared with
    it, not used to place the ladder (their loss minimum was 0.2x to 460x the grid's best LR
    on the bench's dev cases); their steps come out of the probe's budget, ``budget`` x the
    run's steps (an immediate blow-up of one is only a note)."""
    seed0 = config.train.seed
    tests: list[RangeTestResult] = []
    notes: list[str] = []
    for r in range(repeats):
        try:
            tests.append(test(config, seed=seed0 + r))
        except ProbeError as err:
            notes.append(f"range test: {err}")
    total = run_length(config.train.steps, config.train.epochs,
                       steps_per_epoch(n_train, config.train.batch_size))
    range_cost = sum(len(t.lrs) for t in tests)
    outcome = horizon(config, max(0, int(budget * total) - range_cost), range_cost)
    last = outcome.rungs[-1] if outcome.rungs else []  # none: a run too short for miniatures
    kept = [t.lr for t in last if t.rejected is None] or [outcome.lr]
    cost = range_cost + outcome.steps
    per_test = [t.suggestions() for t in tests]
    by_strategy = {HORIZON: outcome.lr,
                   **{name: summarize([s[name].lr for s in per_test])[0] for name in STRATEGIES}}
    chosen = [s[DEFAULT_CURVE_STRATEGY] for s in per_test]
    return BatchFind(config.train.batch_size, outcome.lr, min(kept), max(kept), outcome.reason,
                     by_strategy, disagreement(by_strategy), tests, chosen, outcome.trials, cost,
                     in_epochs(cost, config, n_train), outcome.confidence,
                     notes + outcome.tried, [r[0].steps if r else 0 for r in outcome.rungs])


def in_epochs(steps: int, config: RunConfig, n_train: int) -> float:
    """``steps`` at ``config``'s batch size in epochs as the run counts them (its steps per
    epoch, the last batch of an epoch short): a probe that takes every step of the run costs
    exactly its epochs, not more (steps x batch / examples would count the short batches
    full: 16 steps of 64 on 480 examples read 2.1 of a 2-epoch run's epochs)."""
    return steps / steps_per_epoch(n_train, config.train.batch_size)


def _find_at(
    config: RunConfig, n_train: int, repeats: int, strategy: str,
    test: Callable[..., RangeTestResult], confirm: Callable[[RunConfig, float], TrialOutcome],
) -> BatchFind:
    """Range tests at ``config``'s batch size, then the strategy's LR (for ``trial``: the
    candidates below the median loss minimum, confirmed by ``confirm``)."""
    seed0 = config.train.seed
    tests = [test(config, seed=seed0 + r) for r in range(repeats)]
    per_test = [t.suggestions() for t in tests]
    curve_rule = DEFAULT_CURVE_STRATEGY if strategy == TRIAL else strategy
    chosen = [s[curve_rule] for s in per_test]
    lr, lo, hi = summarize([s.lr for s in chosen])
    by_strategy = {name: summarize([s[name].lr for s in per_test])[0] for name in STRATEGIES}
    if lr is None:
        reason = "; ".join(dict.fromkeys(s.reason for s in chosen))
    else:
        reason = f"median of {sum(s.lr is not None for s in chosen)} of {repeats} repeats; {chosen[0].reason}"
    cost = sum(len(t.lrs) for t in tests)
    trials: list[Trial] = []
    if strategy == TRIAL:
        anchor = summarize([loss_minimum(t.lrs, t.smoothed).lr for t in tests])[0]
        if anchor is None:
            reason = f"no loss minimum to start trials from, so {curve_rule}: {reason}"
        else:
            outcome = confirm(config, anchor)
            trials, cost = outcome.trials, cost + outcome.steps
            if outcome.lr is None:
                alone = "nothing" if lr is None else f"{lr:.3g}"
                reason = f"{outcome.reason} The range test's {curve_rule} rule alone gives {alone}."
                lr = lo = hi = None
            else:
                lr, reason = outcome.lr, outcome.reason
                kept = [t.lr for t in trials if t.rejected is None]
                lo, hi = min(kept), max(kept)
        by_strategy = {TRIAL: lr, **by_strategy}
    return BatchFind(config.train.batch_size, lr, lo, hi, reason, by_strategy,
                     disagreement(by_strategy), tests, chosen, trials, cost,
                     in_epochs(cost, config, n_train))


def lr_find(
    config: RunConfig, *, batch_sizes: Sequence[int] | None = None, repeats: int | None = None,
    strategy: str = DEFAULT_STRATEGY, start_lr: float = 1e-7, end_lr: float = 10.0,
    steps: int | None = None, smoothing: float | None = None, diverge_factor: float = 4.0,
    model: nn.Module | None = None, data: LoadedData | None = None, inputs: RunInputs | None = None,
    budget: float | None = None,
) -> LrFindResult:
    """Range tests at each batch size (default: the config's) x ``repeats`` seeds (default:
    :func:`default_repeats` of the strategy), then the strategy's LR per batch size: by
    default (``horizon``) the best of miniatures of ``config``'s run (its length and
    schedule) by successive halving (``batchlab.probes.lr_horizon``), which always gives an
    LR, with a ``confidence``; ``trial``: short constant-LR trials below the curves' loss
    minimum (``batchlab.probes.lr_trial``); else a rule on the curves alone. So the run
    length and schedule in ``config`` matter.

    ``steps`` (range-test steps) defaults to :func:`default_range_steps`, ``smoothing`` to
    :func:`default_smoothing` of them. ``budget`` (``horizon`` only): the probe's share of the
    run's steps, 0 < budget <= 1 (default ``lr_horizon.BUDGET``, half a run); the miniatures
    grow with it, and so does how often the answer is right (docs/benchmarks.md).

    Raises ProbeError for an unknown strategy, ``repeats < 1``, a bad range or budget or a
    batch larger than the data; for the strategies other than ``horizon`` also for a range
    that diverges at once, and a batch size where they could not suggest an LR has
    ``lr = None`` and a ``reason``.
    """
    if strategy not in LR_STRATEGIES:
        raise ProbeError(f"unknown LR suggestion strategy '{strategy}'; "
                         f"use one of {', '.join(LR_STRATEGIES)}.")
    if budget is not None and strategy != HORIZON:
        raise ProbeError(f"a budget applies to the '{HORIZON}' strategy only (its miniatures of "
                         f"the run); '{strategy}' has its own fixed cost. Drop the budget, or use "
                         f"strategy '{HORIZON}'.")
    if budget is not None and not (isinstance(budget, int | float) and 0 < budget <= 1):
        raise ProbeError(f"budget must be a share of the run's steps above 0 and at most 1 "
                         f"(e.g. 0.5, the default, or 0.9 to be surer), got {budget!r}.")
    repeats = default_repeats(strategy) if repeats is None else repeats
    if repeats < (0 if strategy == HORIZON else 1):
        raise ProbeError(f"repeats must be at least {0 if strategy == HORIZON else 1} for the "
                         f"'{strategy}' strategy, got {repeats}.")
    sizes = list(dict.fromkeys(batch_sizes or [config.train.batch_size]))
    if any(isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in sizes):
        raise ProbeError(f"batch sizes must be positive integers, got {list(batch_sizes or [])}.")
    data = data if data is not None else load_probe_data(config, inputs)
    n_train = len(data.train_y)
    main_steps = steps or default_range_steps(strategy, config, n_train)
    settings = {"start_lr": start_lr, "end_lr": end_lr, "steps": main_steps,
                "smoothing": smoothing or default_smoothing(main_steps),
                "diverge_factor": diverge_factor, "repeats": repeats}
    if strategy == HORIZON:
        settings["budget"] = HORIZON_BUDGET if budget is None else budget
    check_range(start_lr, end_lr, main_steps, settings["smoothing"], diverge_factor)

    def test(cfg: RunConfig, seed: int) -> RangeTestResult:
        n = steps or default_range_steps(strategy, cfg, n_train)
        return lr_range_test(cfg, start_lr=start_lr, end_lr=end_lr, steps=n,
                             smoothing=smoothing or default_smoothing(n),
                             diverge_factor=diverge_factor, seed=seed, model=model, data=data,
                             inputs=inputs)

    def confirm(cfg: RunConfig, anchor: float) -> TrialOutcome:
        return confirm_lr(cfg, data, anchor, model=model, inputs=inputs)

    def horizon(cfg: RunConfig, steps_left: int, spent: int) -> HorizonOutcome:
        return horizon_lr(cfg, data, budget=steps_left, spent=spent, model=model, inputs=inputs)

    for b in sizes:  # fail on every impossible size before spending time on any
        check_batch_fits(n_train, b)
    finds = [_find_horizon(with_batch_size(config, b), n_train, repeats, test, horizon,
                           HORIZON_BUDGET if budget is None else budget)
             if strategy == HORIZON else
             _find_at(with_batch_size(config, b), n_train, repeats, strategy, test, confirm)
             for b in sizes]
    main = next((f for f in finds if f.batch_size == config.train.batch_size), finds[0])
    fitted = [(f.batch_size, f.lr) for f in finds if f.lr is not None]
    alpha = prefactor = None
    if len(fitted) >= 2:
        alpha, prefactor = fit_power_law(*zip(*fitted, strict=True))
        alpha_reason = f"least-squares fit of log lr* on log B over {len(fitted)} batch sizes"
    else:
        alpha_reason = (f"alpha needs suggestions at 2 or more batch sizes, got {len(fitted)}; "
                        "pass more batch_sizes")
    return LrFindResult(strategy, main.batch_size, main.lr, main.reason, finds, alpha, prefactor,
                        alpha_reason, settings)
