"""The collapse-to-chance rule, shared by the diagnosis and by pruning.

A classifier has *collapsed* when it is back at chance after having learned: its validation
accuracy at (or near) 1/C, or its training loss back at ln C (the loss of predicting every one
of C classes equally likely) after having fallen clearly below it. A run that *never
learned* sits at chance from its first evaluation with a training loss clearly above ln C
(worse than guessing: an LR so large that every step overshoots). The diagnosis
(``batchlab.analysis.standing``) judges a whole stored run with this rule; pruning
(``batchlab.train.prune``) judges a run *while it trains*, at each evaluation, and stops it when
either rule has held for :data:`PRUNE_PATIENCE` evaluations in a row (:func:`hopeless`).

This module sits below both (numpy only, no batchlab imports) because the trainer must not
import ``analysis/`` (it reads the store, a layer above the trainer). The defaults of the
diagnosis' ``Thresholds`` are the constants here, so changing one number changes both.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: See ``batchlab.analysis.findings.Thresholds`` for the reason behind each default.
CHANCE_FACTOR = 1.5
COLLAPSE_KEPT = 0.25
CHANCE_LOSS_BAND = 0.05
COLLAPSE_FALL = 0.25
#: Pruning waits for this many consecutive evaluations at chance: one evaluation at chance can
#: be a dip a run recovers from (a spike before an LR decay); three in a row at every epoch's
#: evaluation is a run that stopped learning. Measured on the demo (bench/prune.py): no run
#: that ended at or near the best would have been pruned.
PRUNE_PATIENCE = 3


def accuracy_line(best: float, n_classes: int, chance_factor: float = CHANCE_FACTOR,
                  collapse_kept: float = COLLAPSE_KEPT) -> float:
    """The validation accuracy at or below which a run whose best accuracy so far is ``best``
    is at chance: ``chance_factor / C``, raised (once the run rose above that level) to keep
    ``collapse_kept`` of its best gain over chance 1/C."""
    chance = 1 / n_classes
    level = chance_factor * chance
    if best > level:
        return max(level, chance + collapse_kept * (best - chance))
    return level


def near_chance_loss(values: np.ndarray | Sequence[float], n_classes: int,
                     band: float = CHANCE_LOSS_BAND) -> np.ndarray:
    """Which losses lie within ``band`` (a fraction) of ln C."""
    chance = math.log(n_classes)
    return np.abs(np.asarray(values, dtype=float) - chance) <= band * chance


def fell_below_chance(lowest: float, n_classes: int, fall: float = COLLAPSE_FALL) -> bool:
    """Whether a loss that reached ``lowest`` had fallen at least ``fall`` below ln C (the
    model had learned, so a loss back at ln C is a collapse, not a slow start)."""
    return bool(lowest <= (1 - fall) * math.log(n_classes))


@dataclass(frozen=True)
class CollapseRule:
    """The thresholds of the rule and the patience of pruning (see the module doc)."""

    chance_factor: float = CHANCE_FACTOR
    collapse_kept: float = COLLAPSE_KEPT
    chance_loss_band: float = CHANCE_LOSS_BAND
    collapse_fall: float = COLLAPSE_FALL
    patience: int = PRUNE_PATIENCE


def hopeless(
    epochs: Sequence[float],
    val_acc: Sequence[float | None],
    losses: Sequence[float],
    n_classes: int | None,
    rule: CollapseRule = CollapseRule(),  # noqa: B008 - frozen, so a shared default is safe
) -> str | None:
    """Why a run is hopeless after its evaluations so far, or None when it is not (yet): it
    never learned (:func:`never_learned`) or it collapsed after learning (:func:`collapsed`).
    Pruning asks this after every evaluation. Arguments as :func:`collapsed`."""
    return (never_learned(epochs, val_acc, losses, n_classes, rule)
            or collapsed(epochs, val_acc, losses, n_classes, rule))


def collapsed(
    epochs: Sequence[float],
    val_acc: Sequence[float | None],
    losses: Sequence[float],
    n_classes: int | None,
    rule: CollapseRule = CollapseRule(),  # noqa: B008 - frozen, so a shared default is safe
) -> str | None:
    """Why a run collapsed to chance after having learned, or None.

    ``epochs``, ``val_acc`` (None where not measured) and ``losses`` (the training loss at each
    evaluation; the first evaluation is the untrained model) are aligned, one entry per
    evaluation. A run collapsed when its last ``rule.patience`` evaluations are all at chance
    *after* an earlier evaluation showed it had learned:

    - by accuracy: each at or below :func:`accuracy_line` of the best accuracy before them,
      which had risen above ``chance_factor / C``;
    - by loss: each within ``chance_loss_band`` of ln C, after an earlier evaluation had
      fallen ``collapse_fall`` below ln C (:func:`fell_below_chance`).

    A slow starter (at chance from the start, not yet learning) never collapsed: both rules
    need it to have learned first. Without the number of classes (a regression) nothing did.
    """
    n = rule.patience
    if not n_classes or n_classes < 2 or n < 1 or len(losses) < n + 1:
        return None
    before, last = slice(0, len(losses) - n), slice(len(losses) - n, None)
    since = f"for {n} evaluations (epoch {epochs[last][0]:.3g} to {epochs[-1]:.3g})"
    earlier = [(a, e) for a, e in zip(val_acc[before], epochs[before], strict=True)
               if a is not None and math.isfinite(a)]
    recent = [a for a in val_acc[last] if a is not None and math.isfinite(a)]
    if earlier and len(recent) == n:
        best, at = max(earlier)
        line = accuracy_line(best, n_classes, rule.chance_factor, rule.collapse_kept)
        if best > rule.chance_factor / n_classes and max(recent) <= line:
            return (f"collapsed to chance: val acc {recent[-1]:.3g} (chance 1/{n_classes} = "
                    f"{1 / n_classes:.3g}) at or below {line:.3g} {since}, after reaching "
                    f"{best:.3g} at epoch {at:.3g}")
    finite = [v for v in losses[before] if math.isfinite(v)]
    near = near_chance_loss(losses[last], n_classes, rule.chance_loss_band)
    if finite and near.all() and fell_below_chance(min(finite), n_classes, rule.collapse_fall):
        return (f"collapsed to chance: training loss {losses[-1]:.3g} back at ln {n_classes} = "
                f"{math.log(n_classes):.3g} {since}, after falling to {min(finite):.3g}")
    return None


def never_learned(
    epochs: Sequence[float],
    val_acc: Sequence[float | None],
    losses: Sequence[float],
    n_classes: int | None,
    rule: CollapseRule = CollapseRule(),  # noqa: B008 - frozen, so a shared default is safe
) -> str | None:
    """Why a run never learned, or None. Arguments as :func:`hopeless`. It never learned when

    - every evaluation after the first (the untrained model), and at least ``rule.patience``
      of them, has a training loss more than ``chance_loss_band`` above both ln C and the
      untrained model's loss, with a validation accuracy (where measured) at or below
      ``chance_factor / C``: worse than guessing (a loss above ln C predicts wrong classes
      with confidence), as at an LR so large that every step overshoots;
    - and the latest loss is no longer falling: not ``chance_loss_band`` below the lowest
      before it (a loss still coming down from a spike may be about to learn).

    A slow starter is never caught: at too small an LR its loss stays at or just under the
    untrained model's, inside the band; and one evaluation under the line, ever, clears the run
    for good (it may have started to learn).
    """
    n = rule.patience
    if not n_classes or n_classes < 2 or n < 1 or len(losses) < max(n, 2) + 1:
        return None
    start = losses[0] if math.isfinite(losses[0]) else math.log(n_classes)
    line = (1 + rule.chance_loss_band) * max(math.log(n_classes), start)
    since = losses[1:]
    # NaN compares False: an evaluation without a loss never counts as "above"
    if not all(v > line for v in since):
        return None
    level = rule.chance_factor / n_classes
    if any(a is not None and not (a <= level) for a in val_acc[1:]):  # NaN: not at chance
        return None
    lowest = min(since[:-1])
    if since[-1] < (1 - rule.chance_loss_band) * lowest:
        return None  # still falling
    return (f"never learned: training loss above {line:.3g} (ln {n_classes} = "
            f"{math.log(n_classes):.3g}, untrained {start:.3g}) at every evaluation from epoch "
            f"{epochs[1]:.3g} to {epochs[-1]:.3g} ({len(since)} evaluations) and no longer "
            f"falling ({since[-1]:.3g}, lowest before {lowest:.3g}); val acc at chance")
