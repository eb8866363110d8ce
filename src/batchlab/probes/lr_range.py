"""The LR range test (Leslie Smith 2015/2017), ``lr_find`` over seeds and batch sizes, and
``train.lr = "auto"``.

``lr_range_test``: train a fresh copy of the model for ``steps`` optimizer steps (one batch
each, the config's optimizer, momentum and weight decay, no schedule) while the LR grows
exponentially from ``start_lr`` to ``end_lr``; record the loss of every step and its EMA with
bias correction (``smoothing`` = 0.98, as fastai); stop once the smoothed loss exceeds
``diverge_factor`` x its minimum or a loss is not finite. The recorded loss of step i is
measured on the weights reached with the LRs before it, then the update uses ``lrs[i]``.

``lr_find`` repeats the test with seeds ``seed, seed+1, ...`` at one or more batch sizes and
reports, per batch size, the median suggestion of the chosen strategy with its min/max over
the repeats, every strategy's median (flagging a disagreement larger than 3x), and with two
or more batch sizes the exponent alpha of ``lr* ~ B**alpha``.

Cost of the range tests: ``repeats x len(batch_sizes) x steps`` optimizer steps at most (100
each by default, fewer when the loss diverges early); no evaluation passes. The default
``horizon`` strategy runs no range test unless asked (``repeats``): its miniatures cost at
most half of one run per batch size.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from batchlab.data.pipeline import LoadedData
from batchlab.plan import RunSpec
from batchlab.probes.common import (
    ProbeError,
    check_batch_fits,
    fresh_setup,
    isolated_rng,
    load_probe_data,
)
from batchlab.probes.lr_horizon import BUDGET as HORIZON_BUDGET
from batchlab.probes.lr_horizon import HorizonOutcome, horizon_lr
from batchlab.probes.lr_trial import Trial, TrialOutcome, confirm_lr
from batchlab.probes.plotting import Plottable
from batchlab.probes.suggest import (
    DEFAULT_CURVE_STRATEGY,
    SKIP_START,
    STRATEGIES,
    Suggestion,
    disagreement,
    fit_power_law,
    loss_minimum,
    suggest_all,
    summarize,
)
from batchlab.spec import RunConfig
from batchlab.train.inputs import RunInputs
from batchlab.train.optim import set_lr
from batchlab.train.scaling import scaled_lr
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


def _check_range(start_lr: float, end_lr: float, steps: int, smoothing: float, diverge: float) -> None:
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
    _check_range(start_lr, end_lr, steps, smoothing, diverge_factor)
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


# --------------------------------------------------------------------------- lr_find


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
    kept = [t.lr for t in outcome.rungs[-1] if t.rejected is None] or [outcome.lr]
    cost = range_cost + outcome.steps
    per_test = [t.suggestions() for t in tests]
    by_strategy = {HORIZON: outcome.lr,
                   **{name: summarize([s[name].lr for s in per_test])[0] for name in STRATEGIES}}
    chosen = [s[DEFAULT_CURVE_STRATEGY] for s in per_test]
    return BatchFind(config.train.batch_size, outcome.lr, min(kept), max(kept), outcome.reason,
                     by_strategy, disagreement(by_strategy), tests, chosen, outcome.trials, cost,
                     cost * config.train.batch_size / n_train, outcome.confidence,
                     notes + outcome.tried, [r[0].steps if r else 0 for r in outcome.rungs])


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
    epochs = cost * config.train.batch_size / n_train
    return BatchFind(config.train.batch_size, lr, lo, hi, reason, by_strategy,
                     disagreement(by_strategy), tests, chosen, trials, cost, epochs)


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
    _check_range(start_lr, end_lr, main_steps, settings["smoothing"], diverge_factor)

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


# --------------------------------------------------------------------------- train.lr = "auto"


def auto_lr_key(config: RunConfig) -> str:
    """What the LR probe of ``config`` depends on: data, model, the optimizer settings, the
    batch size and the run length (trials never outlast the run). Runs that differ only in
    seed, schedule, ... share one probe."""
    t = config.train
    fields = {"optimizer", "momentum", "nesterov", "weight_decay", "batch_size", "device",
              "epochs", "steps"}
    return json.dumps([config.data.model_dump(mode="json"), config.model.model_dump(mode="json"),
                       t.model_dump(mode="json", include=fields)], sort_keys=True)


def resolve_auto_lr(
    runs: list[RunSpec], *, repeats: int | None = None, strategy: str = DEFAULT_STRATEGY,
    on_result: Callable[[RunConfig, LrFindResult], None] | None = None,
    known: dict[str, float] | None = None, **range_kwargs: Any,
) -> list[RunSpec]:
    """Replace ``train.lr = "auto"`` by the LR range test's suggestion; other runs pass through.

    One ``lr_find`` per distinct ``auto_lr_key`` (data, model, optimizer settings, batch
    size), with seeds 0..repeats-1 whatever the runs' seeds, so every repeat of a sweep point
    gets the same LR. The suggestion is the *effective* LR at the run's batch size: with a
    scaling rule, ``train.lr`` is set to suggestion / scale factor so the loop's scaled LR
    equals it. It is rounded to 3 significant digits, then the run id is the hash of the
    resolved config: ids are stable across re-runs as long as the suggestion is (it is
    deterministic for fixed seeds on the same machine and thread count; the rounding absorbs
    last-bit float differences). ``on_result(config, result)`` sees every lr_find result
    (e.g. to ``Store.add_probe`` it). ``known``: suggestions already measured, by
    ``auto_lr_key`` (a re-run of a sweep reuses them, so its run ids cannot drift).
    ``range_kwargs`` go to ``lr_find`` (``inputs=``: the Python API's objects). A strategy
    that finds no LR (a curve rule on a shallow curve) falls back to ``horizon``, which
    always answers: ``lr = "auto"`` never aborts a sweep for want of a suggestion.
    """
    found: dict[str, float] = dict(known or {})
    datasets: dict[str, LoadedData] = {}
    out: list[RunSpec] = []
    seen: set[str] = set()
    for run in runs:
        t = run.config.train
        if t.lr != "auto":
            resolved = run
        else:
            key = auto_lr_key(run.config)
            if key not in found:
                probe_cfg = run.config.model_copy(update={"train": t.model_copy(update={"seed": 0})})
                data_key = probe_cfg.data.model_dump_json()
                if data_key not in datasets:
                    datasets[data_key] = load_probe_data(probe_cfg, range_kwargs.get("inputs"))
                result = lr_find(probe_cfg, repeats=repeats, strategy=strategy,
                                 data=datasets[data_key], **range_kwargs)
                if result.suggested_lr is None:  # a curve rule found nothing: horizon always answers
                    result = lr_find(probe_cfg, strategy=HORIZON, data=datasets[data_key],
                                     **range_kwargs)
                if on_result is not None:
                    on_result(probe_cfg, result)
                found[key] = result.suggested_lr
            lr = float(f"{found[key] / scaled_lr(1.0, t.batch_size, t.scale_lr, t.base_batch_size):.3g}")
            config = RunConfig.model_validate(
                {**run.config.model_dump(), "train": {**t.model_dump(), "lr": lr}})
            resolved = RunSpec(config.run_id(), config, run.point)
        if resolved.run_id not in seen:  # two points can resolve to the same run: train it once
            seen.add(resolved.run_id)
            out.append(resolved)
    return out
