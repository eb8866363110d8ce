"""Pick the LR at the run's own horizon: successive halving over a ladder of LRs a decade
apart, each trial a miniature of the user's run.

Why: an LR judged on a few dozen steps at a constant LR favours LRs that learn fast early,
and the best LR for the whole run is often far below it (the short-horizon bias, Wu et al.
2018). So every trial here trains a fresh copy of the model (same weights, same batches,
only the LR differs) for ``h`` steps under the user's schedule *compressed* to ``h`` steps
(warm-up, decay points and cosine all keep their place as fractions of the run), so each
trial ends annealed, as the run will.

1. Rung 0: ``LADDER`` x the optimizer's conventional LR (``conventional_lr``), a decade
   apart, each for ``h0`` steps. A candidate whose loss turns non-finite or that learned
   nothing is rejected (``lr_trial.Baseline``). While the best is the highest candidate the
   ladder grows a decade upwards, while it is the lowest (or every candidate blew up) a
   decade downwards, up to ``MAX_EXTEND`` times.
2. Rung 1: the best of rung 0 and ``SPREAD`` either side of it, each for ``h1 = 2 h0``
   steps. The answer is the best of rung 1 (validation accuracy, ties within a standard
   error broken by the loss; the loss alone for a regression).
3. When no rung-0 miniature learned anything and some merely did not move (the others, if
   any, blew up: too short to tell the LRs apart), the ladder runs again at ``h1`` steps (or
   as many as fit) in place of rung 1, and its best is compared with its neighbours there, as
   far as the whole probe stays within one run. When the pick did not clearly learn
   (validation loss above ``CLEAR_LOSS`` of the untrained model's) it is still the answer,
   with confidence "low"; when no miniature learned anything at all, the answer is the
   optimizer's conventional LR (or the highest LR tried below one that blew up), with
   confidence "low" (``_uninformed``).
4. A duel where rung 1 was a draw: when its runner-up is within noise of its best (inside
   ``choose``'s one-standard-error accuracy band; for a regression within ``LOSS_TIE`` of its
   loss), both train again for ``DUEL`` x rung 1's length (a sixth of the run at the default
   budget), as far as the probe stays within one run, and the better of the two is the answer.

How this design was chosen (bench/judgement.py's dev half only, by ``bench/horizon_designs.py``
over miniatures of every grid LR at eight horizons): the fraction of cases within 3x of the
grid's best LR rises with the horizon of the last rung (a tenth of the run: 13/17; a third:
16/17, but a full grid there costs 3.7 runs); at a probe cost of half a run, a coarse
decade ladder at a twentieth of the run, then the best and 4.6x either side at a tenth did
best (13/17 against 10/17 for the earlier half-decade ladder from the range test's minimum,
whose position was off by 0.2x to 460x). Neighbours 4.6x apart beat 2.2x apart: one seed's
noise cannot tell LRs 2x apart at a tenth of the run.

There is always an answer: when every candidate blew up, even a decade or two lower, the
lowest LR tried is returned with confidence "low" and the reason. The cost is bounded by
construction: the rungs fit ``budget`` steps (half the run less the range test, from
``lr_find``; its ``budget`` sets another share, up to the whole run), plus ``MAX_EXTEND``
extensions of ``h0`` steps each, and never more than one run: a miniature never lasts fewer
than ``MIN_STEPS``, so on a short run the ladder keeps only the candidates that fit
(``KEPT_FIRST``), extends only as far as the run allows, rung 1 is shortened (to ``h0`` at
least, where rung 0's best needs no retrial) or left out, and the ladder runs again (step 3)
only where it fits; a run too short for two miniatures gets the conventional LR untried.
``lr_find`` reports the total in steps and epochs.

Why the duel (step 4), on the dev half only (``bench/horizon_designs.py`` replays it on the
cached miniatures): within 3x of the grid's best on 42 of 44 cases from one seed of the
miniatures (40 without it), 36 (35) from another; within 2x on 37 (34) and 32 (31). It duelled
in 13 and 8 of the 44 cases and changed the pick in 5 and 1. A draw is where more steps pay:
sixth-of-a-run miniatures of two LRs cost a third of a run, spent only where rung 1 could not
decide, so the median cost stays at half a run (the maximum over the dev cases rose from 0.55 to
0.84 runs). From the first seed, a duel in every case was within 3x on 42 and 2x on 39, at a
median of 0.83 runs; a band of two standard errors, 42 and 37 at 0.64. The band is ``choose``'s
own (the tie it breaks by the loss is the one a longer miniature decides); a regression's
(``LOSS_TIE``) scored the same within 3x from 2 % to 10 %. On the held-out half it is within
noise: +2 of 68 cases within 3x from the probe's default seed, -1 of 75 from another
(``python bench/judgement.py --probe-seed 1``).

Why a larger budget can be worth it: on the bench's first 36 dev cases, over two seeds of the
miniatures, this design (before the duel) at half a run was within 3x of the grid's best LR on
59 of 72 case-seeds; a ladder at a tenth of the run and rung 1 at a sixth (0.9 run) on 65 of 72
(``bench/horizon_designs.py``; ``budget=0.9`` gives rungs of 0.09 and 0.18 of the run).

Why the ladder again rather than the conventional LR at once: a held-out case of the bench
(a GRU with plain SGD) learned nothing in any twentieth-of-a-run miniature, and the
conventional LR that followed was 46x below the best. The dev half has one case whose
miniatures said nothing; there the longer ladder said nothing either, and its answer is
unchanged (``bench/judgement.py`` measured it). So this step is argued more than measured:
it spends the budget rung 1 left unspent on the one question still open.
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

LADDER = (0.1, 1.0, 10.0, 100.0)  # rung 0: these x the optimizer's conventional LR
#: the ladder's candidates in the order they are kept when a run is too short for all four
#: within its length: on the bench's dev half the grid's best LR was nearest 10x the
#: conventional LR in 26 of 44 cases, 1x in 9, 100x in 6 and 0.1x in 3
KEPT_FIRST = (10.0, 1.0, 100.0, 0.1)
DECADE = 10.0  # between rung-0 candidates, and each extension of the ladder
SPREAD = 10 ** (2 / 3)  # rung 1: the best of rung 0 and this factor either side
MAX_EXTEND = 2  # extensions of the ladder by a decade, at most
CLEAR_LOSS = 0.9  # a trial "clearly learned" below this fraction of the initial val loss
MIN_STEPS = 8  # a trial shorter than this ranks LRs by noise
DUEL = 5 / 3  # the duel's miniatures: this x rung 1's length (a tenth of the run -> a sixth)
LOSS_TIE = 0.05  # a regression's rung-1 runner-up this close (relative) to the best's loss ties
BUDGET = 0.5  # the whole probe's share of the run's steps, the range test included


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


def rung_steps(total: int, budget_steps: int) -> tuple[int, int]:
    """``(h0, h1)``: trial lengths of rung 0 (``len(LADDER)`` candidates) and rung 1 (3),
    ``h1 = 2 h0``, the longest that fit ``budget_steps``, never below MIN_STEPS nor above
    the run (pure)."""
    h0 = max(MIN_STEPS, budget_steps // (len(LADDER) + 3 * 2))
    return min(h0, total), min(2 * h0, total)


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


def _best(trials: list[Trial], base: Baseline) -> Trial | None:
    """The best kept trial, ranked as ``lr_trial.choose`` ranks them; None when none was kept."""
    kept = [t for t in trials if t.rejected is None]
    i = choose(kept, base)
    return None if i is None else kept[i]


def _learned_nothing(t: Trial) -> bool:
    return (t.rejected or "").startswith("learned nothing")


def _said_nothing(trials: list[Trial]) -> bool:
    """Whether no trial learned anything and some merely did not move (the others broke): then
    longer miniatures, not other LRs, could tell the LRs apart. (A GRU with SGD on the bench:
    at 27 steps LR 1 blew up and 0.001-0.1 had not moved yet; at 30 steps 0.1 learned.)"""
    return all(t.rejected for t in trials) and any(_learned_nothing(t) for t in trials)


def _extended(first: list[Trial], train: Callable[[float], Trial], base: Baseline,
              tried: list[str], limit: int = MAX_EXTEND) -> list[Trial]:
    """Rung 0's trials, with one more candidate a decade beyond the ladder's edge while its
    best is on that edge (downwards when every candidate blew up; not when every one merely
    learned nothing: longer trials, not other LRs, would tell), up to ``limit`` times;
    what was added is appended to ``tried``."""
    for _ in range(limit):
        lowest, highest = min(first, key=lambda tr: tr.lr), max(first, key=lambda tr: tr.lr)
        best = _best(first, base)
        if best is None and _said_nothing(first):
            break
        if best is highest:
            lr = highest.lr * DECADE
            tried.append(f"the highest candidate was the best: added {lr:.3g}")
        elif best is None or best is lowest:
            lr = lowest.lr / DECADE
            tried.append(f"the lowest candidate {'was the best' if best else 'blew up too'}: "
                         f"added {lr:.3g}")
        else:
            break
        first = [*first, train(lr)]
    return first


def _clearly_learned(trial: Trial, base: Baseline) -> bool:
    """Whether a trial moved well away from the untrained model: its validation loss fell
    below CLEAR_LOSS of the initial one (an accuracy a few points above chance on a large
    validation set is no sign of it: it can come from the first steps' noise)."""
    return trial.val_loss < CLEAR_LOSS * base.val_loss


def _rival(trials: list[Trial], pick: Trial, base: Baseline) -> Trial | None:
    """The kept trial of ``trials`` that could not be told from ``pick``: inside
    ``lr_trial.choose``'s accuracy tie band (one standard error below the top accuracy; of several,
    the lowest loss), or for a regression within LOSS_TIE of the pick's loss; None when the pick
    won clearly."""
    others = [t for t in trials if t.rejected is None and t is not pick]
    if math.isfinite(pick.val_acc):
        top = max(t.val_acc for t in [pick, *others])
        near = [t for t in others if t.val_acc >= top - base.standard_error(top)]
    else:
        near = [t for t in others if t.val_loss <= pick.val_loss + LOSS_TIE * abs(pick.val_loss)]
    return min(near, key=lambda t: t.val_loss, default=None)


def _uninformed(default: float, best: Trial, base: Baseline, rungs: list[list[Trial]], cost: int,
                tried: list[str]) -> HorizonOutcome:
    """The answer when no miniature learned anything (they were too short to tell LRs apart):
    the optimizer's conventional LR, confidence "low"; below the lowest LR that blew up (the
    highest tried under it) when that one blew up too.

    Why not the edge of stability: a miniature of a few steps that has not blown up yet says
    little about where the run would (on one dev case of the bench, SGD at 10 passed as
    "stable" after 8 steps), and without a range test there is no other edge to go by.
    """
    trials = [t for rung in rungs for t in rung]
    broke = min((t.lr for t in trials if t.rejected and not _learned_nothing(t)), default=math.inf)
    lr = default if default < broke else max((t.lr for t in trials if t.lr < broke),
                                             default=broke / DECADE)
    which = (f"the optimizer's conventional LR {default:.3g}" if lr == default else
             f"{lr:.3g}, below {broke:.3g}, which blew up (the optimizer's conventional LR is "
             f"{default:.3g})")
    return HorizonOutcome(
        lr, "low",
        f"{which}: the miniatures of the run were too short to tell the LRs apart (none learned "
        f"anything; the first, at {best.lr:.3g}: val loss {best.val_loss:.3g} from "
        f"{base.val_loss:.3g})", rungs, cost, tried)


def _too_short(default: float, total: int, spent: int) -> HorizonOutcome:
    """The answer when not even two MIN_STEPS-step miniatures fit within one run (``total``
    steps, ``spent`` of them taken by range tests): the optimizer's conventional LR, untried,
    confidence "low" (comparing LRs would cost more than the run itself)."""
    left = (f"the range tests took {spent} of its {total} steps" if spent else
            f"it is {total} steps")
    return HorizonOutcome(
        default, "low",
        f"the optimizer's conventional LR {default:.3g}, untried: the run is too short to compare "
        f"LRs within its length ({left}; two {MIN_STEPS}-step miniatures would cost more). At "
        "this length a few full runs at LRs a decade apart cost little: sweep train.lr instead.")


def horizon_lr(config: RunConfig, data: LoadedData, *, budget: int | None = None, spent: int = 0,
               model: torch.nn.Module | None = None, inputs: RunInputs | None = None,
               seed: int | None = None) -> HorizonOutcome:
    """Successive halving over the decade ladder at the run's horizon (module doc).

    ``budget``: the trials' steps (default BUDGET x the run's length, less ``spent``); rung 0's
    extensions and a duel (step 4) come on top of it. ``spent``: steps the probe has already
    taken (range tests): the whole probe stays within one run, so rung 1 is shortened (never
    below rung 0's length) where the extensions left it too little room, and the ladder runs
    again (step 3) and the duel only where they fit.
    """
    t = config.train
    seed = t.seed if seed is None else seed
    n_train = len(data.train_y)
    total = run_length(t.steps, t.epochs, steps_per_epoch(n_train, t.batch_size))
    tried: list[str] = []
    with isolated_rng():
        setup = fresh_setup(config, data, seed=seed, model=model, inputs=inputs)
        default = conventional_lr(setup.make_optimizer(1e-3))
    h0, h1 = rung_steps(total, int(BUDGET * total) - spent if budget is None else budget)
    cap = total - spent  # the whole probe, its range tests included, within one run
    ladder = sorted(KEPT_FIRST[:max(0, min(len(LADDER), cap // h0))])
    if len(ladder) < 2:
        return _too_short(default, total, spent)
    if len(ladder) < len(LADDER):
        tried.append(f"{cap} steps (one run) leave room for {len(ladder)} of the ladder's "
                     f"{len(LADDER)} {h0}-step miniatures")
    base = baseline(config, data, seed, model, inputs)

    def trial(lr: float, h: int) -> Trial:
        return run_trial(config, data, lr, h, seed, model, base, inputs,
                         factor=compressed(config, n_train, h))

    first = _extended([trial(default * m, h0) for m in ladder], lambda lr: trial(lr, h0), base,
                      tried, min(MAX_EXTEND, (cap - len(ladder) * h0) // h0))
    cost = sum(tr.steps for tr in first)
    rungs = [sorted(first, key=lambda tr: tr.lr)]
    best0, h = _best(first, base), h0
    again = min(h1, (cap - cost) // len(ladder))  # the longest ladder again within one run
    if best0 is None and _said_nothing(first) and again > h0:
        # none learned, some did not move: too short to tell. Rung 1's budget is unspent, so
        # the ladder again at its length, or as long as the whole probe stays within one run
        tried.append(f"no {h0}-step miniature learned anything: the ladder again in {again}-step ones")
        first, h = [trial(default * m, again) for m in ladder], again
        cost += sum(tr.steps for tr in first)
        rungs.append(sorted(first, key=lambda tr: tr.lr))
        best0 = _best(first, base)
    if best0 is None and any(_learned_nothing(t) for rung in rungs for t in rung):
        # none learned, some did not move (in either ladder): miniatures this short say nothing
        # (see _uninformed)
        return _uninformed(default, first[0], base, rungs, cost, tried)
    if best0 is None:
        lowest = min(first, key=lambda tr: tr.lr)
        return HorizonOutcome(
            lowest.lr, "low",
            f"no candidate from {lowest.lr:.3g} to {max(tr.lr for tr in first):.3g} learned "
            f"anything in {h}-step miniatures of the run (first: {first[0].rejected}); the "
            "lowest LR tried is returned, but check the data (data.normalize), the model and "
            "the loss.", rungs, cost, tried)
    # rung 1 gives way where the probe would pass one run (a larger budget with rung 0 grown to
    # its limit, or a short run): shorter, then at rung 0's length (its best needs no retrial),
    # then left out
    last = min(h1, (cap - cost) // 3) if h == h0 else h
    if last > h:
        second = [trial(best0.lr * f, last) for f in (1 / SPREAD, 1.0, SPREAD)]
    elif cost + 2 * h <= cap:
        last = h
        second = [trial(best0.lr / SPREAD, h), best0, trial(best0.lr * SPREAD, h)]
    else:
        last, second = h, [best0]
        tried.append(f"no room left within one run for the best's neighbours ({cap - cost} steps)")
    cost += sum(tr.steps for tr in second if tr is not best0)
    if len(second) > 1:
        rungs.append(second)
    then = (f", then of {best0.lr / SPREAD:.3g}, {best0.lr:.3g} and {best0.lr * SPREAD:.3g} in "
            f"{last}-step miniatures" if len(second) > 1 else "")
    pick = _best(second, base) or best0
    rival = _rival(second, pick, base) if len(second) > 1 else None
    h2 = min(round(DUEL * last), (cap - cost) // 2)  # within one run, range tests included
    if rival is not None and h2 > last:
        # rung 1 could not tell the two apart: longer miniatures can (step 4)
        a, b = sorted((pick.lr, rival.lr))
        tried.append(f"{a:.3g} and {b:.3g} were within noise of each other in {last}-step "
                     f"miniatures: both again in {h2}-step ones")
        duel = [trial(a, h2), trial(b, h2)]
        cost += sum(tr.steps for tr in duel)
        rungs.append(duel)
        pick = _best(duel, base) or pick
        then += f", then of {a:.3g} and {b:.3g} in {h2}-step ones"
    lo, hi = min(tr.lr for tr in first), max(tr.lr for tr in first)
    edge = pick.lr in (min(tr.lr for tr in second), max(tr.lr for tr in second))
    # a pick that barely learned is still the best evidence there is (on the dev cases the
    # miniatures' best beat any fallback), but it is not sure
    confidence = "low" if not _clearly_learned(pick, base) else ("medium" if edge or tried else "high")
    score = (f"val acc {pick.val_acc:.1%} (val loss {pick.val_loss:.3g})"
             if math.isfinite(pick.val_acc) else f"val loss {pick.val_loss:.3g}")
    reason = (f"best of {len(first)} LRs a decade apart from {lo:.3g} to {hi:.3g}, each a "
              f"miniature of the run (its schedule squeezed into {h} steps){then}: {score} at "
              f"lr {pick.lr:.3g}")
    return HorizonOutcome(pick.lr, confidence, reason, rungs, cost, tried)
