"""Pick the LR at the run's own horizon: successive halving over an LR ladder, each trial a
miniature of the user's run.

Why: an LR judged on a few dozen steps at a constant LR favours LRs that learn fast early,
and the best LR for the whole run is often far below it (the short-horizon bias, Wu et al.
2018: measured on batchlab's own bench, a 30-step trial picked an LR 19x too high for a
720-step regression). So every trial here trains a fresh copy of the model (same weights,
same batches, only the LR differs) for ``h`` steps under the user's schedule *compressed* to
``h`` steps (warm-up, decay points and cosine all keep their place as fractions of the run),
so each trial ends annealed, as the run will; and the trials that survive are judged again at
a longer horizon, up to ``LAST_FRACTION`` of the run.

1. The ladder: ``CANDIDATES`` LRs half a decade apart from the top LR down to a hundredth of
   it; the top is the range test's loss minimum (the edge of what trains), never below
   ``FLOOR`` x the optimizer's conventional LR (``conventional_lr``: a short, noisy range test
   can put its minimum at its very start), or without a usable range test (a shallow or noisy
   curve, an early blow-up) ``FALLBACK_ABOVE`` x that conventional LR.
2. Rung 0 trains every candidate for ``h0`` steps. A candidate whose loss turns non-finite
   or that learned nothing is rejected (``lr_trial.Baseline``). When the best is the lowest
   candidate the ladder is extended downwards (``EXTEND`` more), when it is the highest
   upwards, when every candidate is rejected downwards (up to ``MAX_EXTEND`` times). The best
   ``KEEP`` train again for ``ETA`` x as long (the last rung lasts at most ``LAST_FRACTION``
   of the run; a short run gets one rung only).
3. The answer is the best of the last rung (validation accuracy, ties within a standard
   error broken by the loss; the loss alone for a regression), moved to the vertex of a
   parabola through it and its ladder neighbours. When even the best miniature barely
   learned (its validation loss above ``CLEAR_LOSS`` of the untrained model's), the
   miniatures were too short to tell LRs apart, and the answer is the range test's minimum
   / ``PRIOR_BELOW`` (near the edge: see ``_uninformed``), with confidence "low"; without
   a usable range test, the optimizer's conventional LR.

There is always an answer: when no candidate learned anything, the lowest LR tried is
returned with confidence "low" and the reason. The cost is bounded by construction: the
rungs' budgets are at most ``BUDGET`` of the run's steps (plus the range test), except that a
miniature never lasts fewer than MIN_STEPS, which on runs under ~150 steps takes up to about
half the run; ``lr_find`` reports the total in steps and epochs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from batchlab.data.pipeline import LoadedData
from batchlab.probes.common import fresh_setup, isolated_rng
from batchlab.probes.lr_trial import Baseline, Trial, baseline, choose, run_trial
from batchlab.spec import RunConfig
from batchlab.train.inputs import RunInputs
from batchlab.train.schedules import run_length, schedule_fn, steps_per_epoch

CANDIDATES = 5  # rung 0: from the top down to a hundredth of it
STEP = 10 ** 0.5  # half a decade between rung-0 candidates
ETA = 3  # each rung trains 3x longer than the one before
RUNGS = 2
LAST_FRACTION = 0.1  # the last rung trains for at most this fraction of the run
KEEP = 3  # rung 0's best three go on: a parabola through them refines the pick
FLOOR = 0.1  # the ladder never starts below this x the optimizer's conventional LR
CLEAR_LOSS = 0.9  # a trial "clearly learned" below this fraction of the initial val loss
PRIOR_BELOW = 3.0  # when no trial clearly learned: the range test's minimum / this
MIN_STEPS = 8  # a trial shorter than this ranks LRs by noise
EXTEND = 2  # candidates added below the ladder when its lowest is the best
MAX_EXTEND = 1
FALLBACK_ABOVE = 10.0  # without a range test, the ladder's top is this x the default
BLOWN_UP = 10.0  # a miniature whose val loss ends this x above the untrained model's blew up
BUDGET = 0.4  # the trials' share of the run's steps, at most (the range test is extra)


def conventional_lr(optimizer: torch.optim.Optimizer) -> float:
    """The LR practitioners start from with this optimizer (its family's usual default)."""
    name = type(optimizer).__name__.lower()
    if name == "sgd":
        group = optimizer.param_groups[0]
        return 0.01 if group.get("momentum", 0) else 0.1
    if name == "adagrad":
        return 0.01
    return 1e-3  # Adam, AdamW, RMSprop and most adaptive optimizers


def compressed(config: RunConfig, n_train: int, horizon: int) -> Callable[[int], float]:
    """The run's schedule as a multiplier of its base LR, squeezed into ``horizon`` steps:
    trial step s takes the factor of run step ``s * R // horizon`` (R = the run's length)."""
    t = config.train
    spe = steps_per_epoch(n_train, t.batch_size)
    total = run_length(t.steps, t.epochs, spe)
    fn = schedule_fn(t.schedule, 1.0, total, spe)
    return lambda s: fn(min(total - 1, s * total // horizon))


def rung_steps(total: int, budget_steps: int, candidates: int) -> list[int]:
    """Trial lengths of the rungs, shortest first, each ETA x the one before, the last at most
    ``LAST_FRACTION`` of the run, so that ``candidates`` x h0 plus KEEP survivors x h1
    fit ``budget_steps``; a single rung of MIN_STEPS when nothing longer fits (pure)."""
    last = max(MIN_STEPS, round(LAST_FRACTION * total))
    while last >= MIN_STEPS:
        rungs = [last]
        while rungs[0] // ETA >= MIN_STEPS and len(rungs) < RUNGS:
            rungs.insert(0, rungs[0] // ETA)
        cost = candidates * rungs[0] + KEEP * sum(rungs[1:])
        if cost <= budget_steps:
            return rungs
        last = int(last * 0.8)
    return [min(MIN_STEPS, total)]


@dataclass(frozen=True)
class HorizonOutcome:
    """The LR (always one), how sure, why, every rung's trials and the steps they cost."""

    lr: float
    confidence: str  # "high" | "medium" | "low"
    reason: str
    rungs: list[list[Trial]] = field(default_factory=list)
    steps: int = 0
    tried: list[str] = field(default_factory=list)  # what was done beyond the plain ladder

    @property
    def trials(self) -> list[Trial]:
        """Every trial of every rung, in order."""
        return [t for rung in self.rungs for t in rung]


def _survivors(trials: list[Trial], base: Baseline, keep: int) -> list[Trial]:
    """The best ``keep`` of the kept trials, ranked as ``lr_trial.choose`` ranks one."""
    kept = [t for t in trials if t.rejected is None]
    out: list[Trial] = []
    while kept and len(out) < keep:
        i = choose(kept, base)
        if i is None:
            break
        out.append(kept.pop(i))
    return sorted(out, key=lambda t: t.lr)


def _vertex(trials: list[Trial], best: Trial) -> float:
    """The vertex of the parabola through ``best`` and its two ladder neighbours in (log lr,
    validation loss), within half a step of it; ``best.lr`` when a neighbour is missing or
    rejected, or the three do not curve upwards."""
    by_lr = sorted((t for t in trials if t.rejected is None), key=lambda t: t.lr)
    i = next(k for k, t in enumerate(by_lr) if t is best)
    if i == 0 or i == len(by_lr) - 1:
        return best.lr
    lo, hi = by_lr[i - 1], by_lr[i + 1]
    if abs(math.log(best.lr / lo.lr / STEP)) > 0.1 or abs(math.log(hi.lr / best.lr / STEP)) > 0.1:
        return best.lr  # not neighbours on the ladder
    y0, y1, y2 = lo.val_loss, best.val_loss, hi.val_loss
    curvature = y0 - 2 * y1 + y2
    if curvature <= 0:
        return best.lr
    h = math.log10(STEP)
    shift = max(-h / 2, min(h / 2, h * (y0 - y2) / (2 * curvature)))
    return 10 ** (math.log10(best.lr) + shift)


def _extended(first: list[Trial], train: Callable[[float], Trial], base: Baseline,
              tried: list[str]) -> list[Trial]:
    """Rung 0's trials, with EXTEND more candidates beyond the ladder's edge while its best is
    on that edge (up to MAX_EXTEND times; downwards when every candidate was rejected), as the
    ground truth's grids are extended; what was added is appended to ``tried``."""
    for _ in range(MAX_EXTEND):
        kept = [tr for tr in first if tr.rejected is None]
        lowest, highest = min(first, key=lambda tr: tr.lr), max(first, key=lambda tr: tr.lr)
        best = _survivors(first, base, 1)
        if kept and best[0] is highest:
            more = [highest.lr * STEP ** (k + 1) for k in range(EXTEND)]
            tried.append(f"the highest candidate was the best: added {more[0]:.3g} and {more[-1]:.3g}")
        elif not kept or best[0] is lowest:
            more = [lowest.lr / STEP ** (k + 1) for k in range(EXTEND)]
            tried.append(f"the lowest candidate {'was the best' if kept else 'was rejected too'}: "
                         f"added {more[-1]:.3g} and {more[0]:.3g}")
        else:
            break
        first = first + [train(lr) for lr in more]
    return first


def _clearly_learned(trial: Trial, base: Baseline) -> bool:
    """Whether a trial moved well away from the untrained model: its validation loss fell
    below CLEAR_LOSS of the initial one (an accuracy a few points above chance on a large
    validation set is no sign of it: it can come from the first steps' noise)."""
    return trial.val_loss < CLEAR_LOSS * base.val_loss


def _stable_ceiling(trials: list[Trial], base: Baseline, otherwise: float) -> float:
    """The highest LR whose miniature stayed finite and within BLOWN_UP x the untrained
    model's validation loss (``otherwise`` when none did): the edge of stability can lie no
    higher. A short noisy range test can put its minimum far above it (4.6 for AdamW on one
    dev case, whose miniatures blew up from 1.5 on)."""
    stable = [t.lr for t in trials if math.isfinite(t.val_loss) and t.val_loss < BLOWN_UP * base.val_loss]
    return max(stable, default=otherwise)


def _uninformed(top: float, default: float, anchored: bool, best: Trial, base: Baseline,
                rungs: list[list[Trial]], cost: int, tried: list[str]) -> HorizonOutcome:
    """The answer when no miniature clearly learned (they were too short to tell LRs apart):
    the range test's scale, its loss minimum / PRIOR_BELOW, or without a usable range test the
    optimizer's conventional LR, which is a better guess than a pick among noise; confidence
    "low".

    Why near the edge: miniatures of a tenth of the run that barely learn mean the whole run
    is short for this model, so it ends still descending, where the fastest stable LR wins.
    On the five dev cases of the bench where this answer applied, the best LR was 0.13, 0.9,
    1.2 and 1.7x the range test's minimum (and 1/460 on one whose range test ended at 4.6
    for AdamW); the factor 3 keeps a margin below the edge of stability, where a run can
    blow up. An earlier factor of 10, the median relation over all dev cases (long runs
    included), put three of those answers 9-17x too low.
    """
    why = (f"the miniatures of the run were too short to tell the LRs apart (the best, "
           f"{best.lr:.3g}, barely learned: val loss {best.val_loss:.3g} from {base.val_loss:.3g})")
    if anchored:
        edge = min(top, _stable_ceiling([t for rung in rungs for t in rung], base, top))
        source = (f"the range test's loss minimum {top:.3g}" if edge == top else
                  f"{edge:.3g}, the highest LR whose miniature did not blow up (the range test's "
                  f"loss minimum {top:.3g} lies above it)")
        return HorizonOutcome(edge / PRIOR_BELOW, "low", f"{PRIOR_BELOW:g}x below {source}: {why}",
                              rungs, cost, tried)
    return HorizonOutcome(default, "low", f"the optimizer's conventional LR {default:.3g}: the range "
                          f"test gave no usable edge and {why}", rungs, cost, tried)


def horizon_lr(config: RunConfig, data: LoadedData, top: float | None, *,
               model: torch.nn.Module | None = None, inputs: RunInputs | None = None,
               seed: int | None = None) -> HorizonOutcome:
    """Successive halving over the ladder below ``top`` at the run's horizon (module doc).

    ``top``: the range test's loss minimum, or None to start from the optimizer's
    conventional LR. The trials never cost more than ``BUDGET`` of the run's steps.
    """
    t = config.train
    seed = t.seed if seed is None else seed
    n_train = len(data.train_y)
    total = run_length(t.steps, t.epochs, steps_per_epoch(n_train, t.batch_size))
    tried: list[str] = []
    with isolated_rng():
        setup = fresh_setup(config, data, seed=seed, model=model, inputs=inputs)
        default = conventional_lr(setup.make_optimizer(1e-3))
    anchored = top is not None and top >= FLOOR * default
    if top is None:
        top = FALLBACK_ABOVE * default
        tried.append(f"no usable range test: a ladder from {top:.3g} ({FALLBACK_ABOVE:g}x the "
                     f"optimizer's conventional {default:.3g}) down")
    elif not anchored:  # a short, noisy range test can put its minimum at its very start
        tried.append(f"the range test's loss minimum ({top:.3g}) is below {FLOOR:g}x the "
                     f"optimizer's conventional {default:.3g}: the ladder starts there instead")
        top = FLOOR * default
    ladder = [top / STEP ** k for k in range(CANDIDATES)]
    rungs_h = rung_steps(total, int(BUDGET * total), CANDIDATES + EXTEND * MAX_EXTEND)
    base = baseline(config, data, seed, model, inputs)

    def trial(lr: float, h: int) -> Trial:
        return run_trial(config, data, lr, h, seed, model, base, inputs,
                         factor=compressed(config, n_train, h))

    h0 = rungs_h[0]
    first = _extended([trial(lr, h0) for lr in ladder], lambda lr: trial(lr, h0), base, tried)
    cost = sum(tr.steps for tr in first)
    rungs = [sorted(first, key=lambda tr: tr.lr)]
    alive = _survivors(first, base, KEEP)
    if not alive and all((tr.rejected or "").startswith("learned nothing") for tr in first):
        # none broke, none moved: miniatures this short say nothing (see the fallbacks below)
        return _uninformed(top, default, anchored, first[0], base, [first], cost, tried)
    if not alive:
        lowest = min(first, key=lambda tr: tr.lr)
        return HorizonOutcome(
            lowest.lr, "low",
            f"no candidate from {lowest.lr:.3g} to {top:.3g} learned anything in {h0}-step "
            f"miniatures of the run (first: {first[0].rejected}); the lowest LR tried is "
            "returned, but check the data (data.normalize), the model and the loss.",
            rungs, cost, tried)
    if len(rungs_h) > 1:
        trials = [trial(tr.lr, rungs_h[1]) for tr in alive]
        cost += sum(tr.steps for tr in trials)
        rungs.append(trials)
    last = rungs[-1] if _survivors(rungs[-1], base, 1) else rungs[0]
    pick = _survivors(last, base, 1)[0]
    lr = _vertex(last, pick)
    if not _clearly_learned(pick, base):
        return _uninformed(top, default, anchored, pick, base, rungs, cost, tried)
    lo, hi = min(tr.lr for tr in rungs[0]), max(tr.lr for tr in rungs[0])
    edge = pick.lr in (lo, hi)
    confidence = "high" if anchored and not edge and not tried else ("medium" if anchored else "low")
    score = (f"val acc {pick.val_acc:.1%} (val loss {pick.val_loss:.3g})"
             if math.isfinite(pick.val_acc) else f"val loss {pick.val_loss:.3g}")
    then = f", then the best {len(rungs[-1])} into {rungs_h[-1]}" if len(rungs) > 1 else ""
    reason = (f"best of {len(rungs[0])} LRs from {lo:.3g} to {hi:.3g}, each trained as a miniature "
              f"of the run (its schedule squeezed into {rungs_h[0]} steps{then}): {score} at lr "
              f"{pick.lr:.3g}"
              + (f", refined to {lr:.3g} between its neighbours" if lr != pick.lr else ""))
    return HorizonOutcome(lr, confidence, reason, rungs, cost, tried)
