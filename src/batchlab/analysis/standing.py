"""Where a run ended up: at chance (``collapsed``), or, for a run with no other finding,
``healthy``, ``below_best`` (behind its sweep's best beyond noise) or ``undertrained`` (alone,
and not clearly trained).

Pure functions of a run's series, its :class:`RunContext` and :class:`Thresholds`. Rules that
need the number of classes stay silent without it; rules on accuracy fall back to the loss when
no accuracy is recorded (a regression).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from batchlab.analysis import series as S
from batchlab.analysis.findings import Finding, RunContext, Thresholds, at, pct, points
from batchlab.analysis.loss import loss_curve
from batchlab.analysis.trend import tail_trend
from batchlab.collapse import accuracy_line, fell_below_chance, near_chance_loss
from batchlab.store import Series


def _pts(x: float) -> str:
    return points(x)


def _chance_accuracy(val_acc: Series, n_classes: int, th: Thresholds) -> Finding | None:
    """The final validation accuracy at or below ``chance_factor / C``, or keeping less than
    ``collapse_kept`` of its best gain over chance; the collapse is the first evaluation after
    the last one above that line."""
    f = S.finite(val_acc)
    if not len(f.value):
        return None
    chance = 1 / n_classes
    level = th.chance_factor * chance
    b = int(np.argmax(f.value))
    best, final = float(f.value[b]), float(f.value[-1])
    line = accuracy_line(best, n_classes, th.chance_factor, th.collapse_kept)
    if final > line:
        return None
    numbers = {"final_val_acc": final, "best_val_acc": best, "chance_level": level,
               "n_classes": float(n_classes)}
    if final <= level:
        where = (f"at chance (<= {pct(level)}, {th.chance_factor:g}x the {pct(chance)} of guessing "
                 f"among {n_classes})")
    else:
        where = (f"keeping {pct((final - chance) / (best - chance))} of its gain over chance "
                 f"({pct(chance)} for {n_classes} classes)")
    above = np.flatnonzero(f.value > line)
    if not above.size:
        return Finding("collapsed", f"collapsed: val acc never rose above chance; it ends at "
                       f"{pct(final)}, {where}", None, None, numbers)
    k = int(above[-1]) + 1
    numbers["collapse_step"] = float(f.step[k])
    msg = (f"collapsed at {at(f, f.step[k])}: val acc fell from {pct(best)} (epoch "
           f"{f.epoch[b]:.3g}) to {pct(f.value[k])} and ends at {pct(final)}, {where}")
    return Finding("collapsed", msg, int(f.step[k]), float(f.epoch[k]), numbers)


def _chance_loss(metrics: Mapping[str, Series], n_classes: int, th: Thresholds) -> Finding | None:
    """The training loss (else the validation loss) ending within ``chance_loss_band`` of ln C
    after having fallen ``collapse_fall`` below it; the collapse is where its final stretch at
    chance begins."""
    curve = loss_curve(metrics)
    step, epoch, value = curve.step, curve.epoch, curve.value
    name = "training loss"
    if len(value) < 2:
        f = S.finite(S.get(metrics, "val_loss"))
        step, epoch, value, name = f.step, f.epoch, f.value, "val loss"
    chance = math.log(n_classes)
    if len(value) < 2 or not chance > 0:
        return None
    near = near_chance_loss(value, n_classes, th.chance_loss_band)
    if not near[-1]:
        return None
    away = np.flatnonzero(~near)
    k = int(away[-1]) + 1 if away.size else 0
    low = int(np.argmin(value[:k])) if k else 0
    if not k or not fell_below_chance(float(value[low]), n_classes, th.collapse_fall):
        return None  # it never learned: at chance from the start is no collapse of the loss
    msg = (f"collapsed at step {step[k]:.0f} (epoch {epoch[k]:.3g}): the {name} fell to "
           f"{value[low]:.3g} (epoch {epoch[low]:.3g}), then came back to "
           f"{value[k]:.3g} and ends at {value[-1]:.3g}, at chance (ln {n_classes} = {chance:.3g})")
    return Finding("collapsed", msg, int(step[k]), float(epoch[k]),
                   {"lowest_loss": float(value[low]), "final_loss": float(value[-1]),
                    "chance_loss": chance, "collapse_step": float(step[k]), "n_classes": float(n_classes)})


def check_collapsed(metrics: Mapping[str, Series], n_classes: int | None, th: Thresholds) -> Finding | None:
    """At chance by the numbers: the final validation accuracy at or below ``chance_factor / C``,
    or the loss back at ln C after having fallen. The accuracy's finding is preferred (it says
    more); None without the number of classes."""
    if not n_classes or n_classes < 2:
        return None
    return _chance_accuracy(S.get(metrics, "val_acc"), n_classes, th) or _chance_loss(metrics, n_classes, th)


def _own_noise(series: Series, th: Thresholds) -> float:
    """How much the curve's final window scatters about its own trend (0 when unknown).

    The untrained model's evaluation (step 0) is left out: on a run of two or three epochs the
    window would reach back to it, and the fall from it would count as scatter (a 2-epoch
    regression read "within noise (214%)" of a best 2.6x lower)."""
    trend = tail_trend(S.after(series, 0), th.not_converged_window)
    return trend.scatter if trend is not None else 0.0


def _loss_words(metrics: Mapping[str, Series]) -> tuple[str, dict[str, float]]:
    curve = loss_curve(metrics)
    if not len(curve.value):
        return "", {}
    return (f"train loss {curve.initial:.3g} -> {curve.value[-1]:.3g}",
            {"initial_loss": curve.initial, "final_loss": float(curve.value[-1])})


def _against_sweep(metrics: Mapping[str, Series], ctx: RunContext, th: Thresholds) -> Finding | None:
    """Healthy within noise of the sweep's best, else below_best (accuracy, else loss)."""
    val_acc = S.finite(S.get(metrics, "val_acc"))
    words, numbers = _loss_words(metrics)
    if len(val_acc.value) and ctx.sweep_best_val_acc is not None:
        final, best = float(val_acc.value[-1]), ctx.sweep_best_val_acc
        noise = max(ctx.noise if ctx.noise is not None else th.noise_floor, _own_noise(val_acc, th))
        numbers.update(final_val_acc=final, sweep_best_val_acc=best, noise=noise)
        if best - final > noise:
            return Finding("below_best", f"below the sweep's best: val acc ends at {pct(final)}, "
                           f"{_pts(best - final)} under the best configuration's {pct(best)} (noise "
                           f"{_pts(noise)})" + (f"; {words}" if words else ""), None, None, numbers)
        return Finding("healthy", f"healthy: val acc {pct(final)}, within noise ({_pts(noise)}) of "
                       f"the sweep's best {pct(best)}" + (f"; {words}" if words else ""), None, None, numbers)
    val_loss = S.finite(S.get(metrics, "val_loss"))
    if not len(val_loss.value) or ctx.sweep_best_val_loss is None:
        return None
    final, best = float(val_loss.value[-1]), ctx.sweep_best_val_loss
    rel = max(th.loss_noise_floor, _own_noise(val_loss, th) / final if final > 0 else 0.0)
    numbers.update(final_val_loss=final, sweep_best_val_loss=best, noise=rel)
    if final > best * (1 + rel):
        return Finding("below_best", f"below the sweep's best: val loss ends at {final:.3g}, "
                       f"{pct(final / best - 1)} above the best configuration's {best:.3g} (noise "
                       f"{pct(rel)})", None, None, numbers)
    return Finding("healthy", f"healthy: val loss {final:.3g}, within noise ({pct(rel)}) of the "
                   f"sweep's best {best:.3g}" + (f"; {words}" if words else ""), None, None, numbers)


def _alone(metrics: Mapping[str, Series], n_classes: int | None, th: Thresholds) -> Finding | None:
    """Healthy when clearly trained (see ``trained_level`` and ``trained_loss_fall``), else
    undertrained; None with nothing to judge by."""
    val_acc = S.finite(S.get(metrics, "val_acc"))
    curve = loss_curve(metrics)
    words, numbers = _loss_words(metrics)
    parts, short, judged = [], [], False
    if len(val_acc.value):
        b = int(np.argmax(val_acc.value))
        final = float(val_acc.value[-1])
        numbers.update(final_val_acc=final, best_val_acc=float(val_acc.value[b]))
        parts.append(f"val acc {pct(final)} (best {pct(val_acc.value[b])} at epoch {val_acc.epoch[b]:.3g})")
        if n_classes and n_classes >= 2:
            chance = 1 / n_classes
            level = chance + th.trained_level * (1 - chance)
            numbers["trained_level"] = level
            judged = True
            if final < level:
                short.append(f"val acc {pct(final)} is under {pct(level)}, half way from chance "
                             f"({pct(chance)}) to perfect")
    if len(curve.value) >= 2 and curve.initial > 0:
        parts.append(words)
        limit = (1 - th.trained_loss_fall) * curve.initial
        judged = True
        if curve.value[-1] > limit:
            fell = 1 - curve.value[-1] / curve.initial
            short.append(f"the training loss fell only {pct(max(fell, 0.0))} "
                         f"({curve.initial:.3g} -> {curve.value[-1]:.3g})")
    if not judged:
        return None  # neither a chance level nor a loss to judge "clearly trained" by
    if short:
        return Finding("undertrained", "undertrained: " + "; ".join(short) + "; with no other "
                       "configuration to compare, train longer or raise the LR", None, None, numbers)
    return Finding("healthy", "healthy: " + ", ".join(parts), None, None, numbers)


def check_standing(metrics: Mapping[str, Series], ctx: RunContext, th: Thresholds) -> Finding | None:
    """For a run with no other finding: healthy, below_best or undertrained (see the module
    doc); None when there is nothing to judge. In a sweep (``ctx.sweep_best_*`` set) the run
    is healthy only when it ends within noise of the best (noise: the sweep's, or the run's own
    scatter about its final trend when larger); alone, only when clearly trained."""
    if ctx.sweep_best_val_acc is not None or ctx.sweep_best_val_loss is not None:
        found = _against_sweep(metrics, ctx, th)
        if found is not None:
            return found
    return _alone(metrics, ctx.n_classes, th)
