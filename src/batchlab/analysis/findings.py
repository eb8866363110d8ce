"""What a diagnosis says and by which numbers: :class:`Finding`, the named :class:`Thresholds`
(each with the reason for its default) and the :class:`RunContext` a run is judged in.

Kept apart from the checks so that every module of checks (``diagnose``, ``standing``) shares one
definition without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

from batchlab.analysis import series as S
from batchlab.collapse import CHANCE_FACTOR, CHANCE_LOSS_BAND, COLLAPSE_FALL, COLLAPSE_KEPT
from batchlab.store import Series

#: Every diagnosis, most severe first (the order findings are listed in).
KINDS = ("diverged", "pruned", "collapsed", "exploding", "exploding_gradients", "lr_too_large",
         "no_gradient", "unstable", "overfitting", "model_too_small", "not_converged", "lr_too_small",
         "vanishing_gradients", "dead_units", "plateau", "small_bn_batch", "bn_per_process",
         "undertrained", "below_best", "healthy")


@dataclass(frozen=True)
class Thresholds:
    """The named thresholds of every diagnosis and of the experiment-level noise test.

    overfit_gap: final train accuracy minus validation accuracy above this (0.10 = 10 points)
        is overfitting; below it, the gap is typical of a well-regularised model.
    overfit_val_loss_rise: the final validation loss this fraction above its minimum (0.10 =
        10%) while the training loss is still lower than at that minimum is overfitting; smaller
        rises are evaluation noise.
    explode_factor: a training loss (per step, else evaluated) above this multiple of its
        initial value (10x) is exploding: a model at initialisation is near chance, so 10x
        chance is far outside what minibatch noise produces.
    unstable_val_acc_std: over the last half of training, the standard deviation of the
        change in validation accuracy between consecutive evaluations above this (0.05 = 5
        points), with at least one drop that large, is unstable; a steady climb or one jump
        at an LR decay has a small spread or no drop.
    not_converged_slope: validation loss still falling by more than this fraction of its level
        (0.05 = 5%) over the last ``not_converged_window`` of training means more training
        would help ...
    not_converged_rate: ... as does a validation loss still falling at more than this fraction
        (0.5) of its average rate over the whole run (the window's share of the total fall
        above 0.5 x the window): a converging curve slows far below its average rate, a
        slowly learning one (too small an LR, too few steps) keeps it, even when the fall is
        small relative to a level that is still high.
    not_converged_window: the final fraction of training (0.2) those tests look at (at least
        the last 3 evaluations, the fewest a straight line can be fitted to with a noise
        estimate).
    trend_noise: either fall counts only when the least-squares fall over the window exceeds
        this multiple (1) of its 95% Student-t half-width (from the scatter of the points about
        the line; 0 disables): a flat, noisy curve whose end points happen to differ is not
        "still falling".
    lr_too_small_drop: a training loss that never fell more than this fraction (0.05 = 5%)
        below its initial value learned nearly nothing: the LR is too small (or training far
        too short).
    lr_too_small_max_rise: ... but only if the per-step loss never rose more than this
        fraction (0.5) above its start. A flat loss after a big excursion is a collapse to
        chance from an LR that is too *large*, not too small.
    plateau_window: a stretch of at least this fraction of training (0.3) during which the
        training loss made less than ``plateau_progress`` of its total progress, followed by
        at least that much progress, is a plateau (time spent stuck, e.g. until an LR decay).
    plateau_progress: the fraction of the total fall of the loss (initial -> best) that counts
        as progress (0.1); a converged tail is not a plateau because less than this is left.
    chance_factor: a final validation accuracy at or below this multiple of chance (1.5 / C
        for C classes) is at chance: a model predicting one class or the class prior scores
        1/C on balanced data and a little more on mildly imbalanced data, while any trained
        classifier is far above; 1.5/C is at most half way from chance to perfect (exactly
        half way for C = 2), so no trained level falls below it.
    collapse_kept: ... and so is one that had risen above that level but whose final accuracy
        keeps less than this fraction (0.25) of its best gain over chance (92.5% -> 17.8% on 10
        classes keeps 9%): it lost nearly all it learned, far more than the few points an
        overfitting or noisy run gives back.
    chance_loss_band: a loss within this fraction (0.05) of ln C, the loss of predicting every
        class equally likely, is at chance: predicting the label prior of a mildly imbalanced
        set lies within a few percent below ln C, and a model that ranks classes at all sits
        clearly below.
    collapse_fall: a loss back at chance counts as a collapse only if it had first fallen at
        least this fraction (0.25) below ln C: then the model had learned (a quarter of the
        label entropy explained is far beyond evaluation noise), and lost it.
    (These four defaults are the constants of ``batchlab.collapse``, whose rule pruning shares.)
    trained_level: a run judged alone (no sweep to compare with) has reached a clearly trained
        level when its final validation accuracy is at least this fraction (0.5) of the way from
        chance to perfect ...
    trained_loss_fall: ... and its training loss ends at most (1 - this) = half its initial
        value. A model whose loss fell only 10% still predicts nearly uniform probabilities
        even if its arg-max is often right: it is under-trained, not done.
    noise_floor: with a single seed per configuration, two configurations whose validation
        accuracies differ by less than this (0.01 = 1 point) are within seed noise, the typical
        seed-to-seed spread of small-data classifiers; with several seeds their std is used.
    loss_noise_floor: without accuracies, two final validation losses within this fraction
        (0.05) of each other are within noise (a few percent is the typical seed-to-seed
        spread of a final loss on small sets: on the judgement bench's regression cases one
        seed std of a final MSE is 1.5% to 36% of the best; the overfitting test calls only a
        10% rise real). ``bench/judgement_rules.py`` checks ``healthy`` with this same floor.
    bn_min_batch: a model with BatchNorm trained on fewer examples than this (16) per forward
        pass (the micro-batch under gradient accumulation, else the batch) gets a note: its
        batch statistics are noisy (Wu & He 2018: BatchNorm's ImageNet error rises steeply
        below 16 per GPU). A note, not a failure: it says why a small batch may lose accuracy.
    """

    overfit_gap: float = 0.10
    overfit_val_loss_rise: float = 0.10
    explode_factor: float = 10.0
    unstable_val_acc_std: float = 0.05
    not_converged_slope: float = 0.05
    not_converged_rate: float = 0.5
    not_converged_window: float = 0.2
    trend_noise: float = 1.0
    lr_too_small_drop: float = 0.05
    lr_too_small_max_rise: float = 0.5
    plateau_window: float = 0.3
    plateau_progress: float = 0.1
    chance_factor: float = CHANCE_FACTOR
    collapse_kept: float = COLLAPSE_KEPT
    chance_loss_band: float = CHANCE_LOSS_BAND
    collapse_fall: float = COLLAPSE_FALL
    trained_level: float = 0.5
    trained_loss_fall: float = 0.5
    noise_floor: float = 0.01
    loss_noise_floor: float = 0.05
    bn_min_batch: int = 16


@dataclass(frozen=True)
class RunContext:
    """What a run is judged against besides its own curves.

    n_classes: the number of classes (chance accuracy 1/C, chance loss ln C); None when unknown
        (a regression, a tracked loop that did not say): the chance-level rules stay silent.
    sweep_best_val_acc: the best configuration's validation accuracy in the run's sweep (mean
        over seeds); None when the run is alone (fewer than 2 configurations to compare).
    sweep_best_val_loss: the lowest final validation loss of the sweep's configurations, used
        instead when no accuracy is recorded; None when alone.
    noise: the sweep's accuracy noise (the best configuration's seed std, else the noise
        floor); None uses ``Thresholds.noise_floor``.
    """

    n_classes: int | None = None
    sweep_best_val_acc: float | None = None
    sweep_best_val_loss: float | None = None
    noise: float | None = None


@dataclass(frozen=True)
class Finding:
    """One diagnosis: ``kind`` (one of :data:`KINDS`), a sentence with the numbers, where it
    happened (step/epoch, None when it is about the whole run) and the numbers themselves."""

    kind: str
    message: str
    step: int | None
    epoch: float | None
    numbers: dict[str, float]


def pct(x: float) -> str:
    """An accuracy or fraction as a short percentage: 0.9944 -> '99.4%', 1.0 -> '100%'."""
    return f"{100 * x:.3g}%"


def points(x: float) -> str:
    """An accuracy difference in percentage points: 0.005 -> '0.5 points', 0.01 -> '1 point'."""
    text = f"{100 * x:.2g}"
    return f"{text} point" + ("" if text == "1" else "s")


def at(series: Series, step: float) -> str:
    """'step 120 (epoch 2.5)' for a step of ``series``."""
    epoch = S.epoch_at(series, step)
    return f"step {step:.0f}" + (f" (epoch {epoch:.3g})" if epoch is not None else "")
