"""Diagnose one run from its curves: what went wrong (or right), in plain words with numbers.

Each check is a small pure function of the run's series returning a :class:`Finding` or None;
:func:`diagnose_run` runs them all. Every threshold lives in :class:`Thresholds` with the reason
for its default, so a user who disagrees changes a number, not the code. Checks never raise on
empty, short or all-NaN series: a check without the data it needs stays silent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from batchlab.analysis import series as S
from batchlab.analysis.findings import KINDS, Finding, RunContext, Thresholds, at, pct
from batchlab.analysis.layers import layer_findings
from batchlab.analysis.loss import finest_loss, loss_curve
from batchlab.analysis.standing import check_collapsed, check_standing
from batchlab.analysis.trend import tail_trend
from batchlab.store import Series

__all__ = ["DIAGNOSIS_METRICS", "EVAL_METRICS", "KINDS", "Finding", "RunContext", "Thresholds",
           "diagnose_run", "pct", "wants_step_loss"]

#: Evaluation metrics: a few rows per epoch, cheap to read.
EVAL_METRICS = ("train_eval_loss", "val_loss", "val_acc", "train_acc")
#: Every metric the checks read. Per-step ``train_loss`` is nearly all the rows of a long run,
#: so a store reader fetches it only when :func:`wants_step_loss` says it can matter.
DIAGNOSIS_METRICS = ("train_loss", *EVAL_METRICS)


def wants_step_loss(
    metrics: Mapping[str, Series],
    status: str,
    th: Thresholds = Thresholds(),  # noqa: B008 - frozen, so a shared default is safe
) -> bool:
    """Whether per-step ``train_loss`` could change the diagnosis of a run whose evaluation
    metrics are ``metrics``: it diverged (the step and the last finite loss), its evaluated
    training loss ever rose above its initial value (a spike: its size and step), never fell by
    ``lr_too_small_drop`` (a flat run: only the per-step peak tells a too-small LR from a
    collapse after a too-large one), or there is no evaluated training loss to judge."""
    if status == "diverged":
        return True
    ev = S.finite(S.get(metrics, "train_eval_loss")).value
    if len(ev) < 2:
        return True
    return bool(ev.max() > ev[0] or ev.min() > (1 - th.lr_too_small_drop) * ev[0])


# --------------------------------------------------------------------------------- the checks
def check_pruned(status: str, summary: Mapping[str, Any], error: str | None) -> Finding | None:
    """A run stopped early by ``sweep.prune``, with the reason it was given (the store keeps it
    as the run's error text) and the step (``summary["pruned_at_step"]``, hopeless runs)."""
    if status != "pruned":
        return None
    why = error or "the reason is not recorded"
    step = summary.get("pruned_at_step")
    return Finding("pruned", f"pruned: {why}", int(step) if isinstance(step, int) else None, None,
                   {"step": float(step)} if isinstance(step, int) else {})


def check_diverged(train_loss: Series, status: str, summary: Mapping[str, Any]) -> Finding | None:
    """A non-finite training loss, the store's ``diverged`` status or ``diverged_at_step``."""
    bad = S.first_nonfinite(train_loss)
    step = summary.get("diverged_at_step")
    if step is None and bad is not None:
        step = int(train_loss.step[bad])
    if step is None and status != "diverged":
        return None
    if step is None:
        return Finding("diverged", "diverged (the step is not recorded)", None, None, {})
    step = int(step)
    numbers: dict[str, float] = {"step": float(step)}
    where = at(train_loss, step)
    what = ""
    if bad is not None:
        what = f": the training loss became {train_loss.value[bad]}"
        if bad > 0 and np.isfinite(train_loss.value[bad - 1]):
            numbers["last_finite_loss"] = float(train_loss.value[bad - 1])
            what += f" (last finite loss {train_loss.value[bad - 1]:.3g})"
    epoch = S.epoch_at(train_loss, step)
    return Finding("diverged", f"diverged at {where}{what}", step, epoch, numbers)


def check_exploding(metrics: Mapping[str, Series], th: Thresholds) -> Finding | None:
    """A finite training loss (per step, else evaluated) above ``explode_factor`` x its start."""
    finest, initial = finest_loss(metrics)
    f = S.finite(finest)
    if not len(f.value) or not initial > 0:
        return None
    above = np.flatnonzero(f.value > th.explode_factor * initial)
    if not above.size:
        return None
    i = int(above[0])
    peak = float(f.value.max())
    msg = (f"exploding: train loss {f.value[i]:.3g} at {at(f, f.step[i])}, "
           f"{f.value[i] / initial:.3g}x its initial {initial:.3g} (peak {peak:.3g})")
    return Finding("exploding", msg, int(f.step[i]), float(f.epoch[i]),
                   {"loss": float(f.value[i]), "initial_loss": initial, "peak_loss": peak,
                    "factor": float(f.value[i] / initial)})


def check_unstable(val_acc: Series, th: Thresholds) -> Finding | None:
    """Validation accuracy swinging between evaluations over the last half of training."""
    f = S.finite(val_acc)
    if len(f.value) < 3:
        return None
    half = f.step >= f.step[0] + (f.step[-1] - f.step[0]) / 2
    change = np.diff(f.value[half])
    if change.size < 2:
        return None
    spread, drop = float(change.std()), float(-change.min())
    if spread <= th.unstable_val_acc_std or drop <= th.unstable_val_acc_std:
        return None
    k = int(np.flatnonzero(half)[0] + np.argmin(change) + 1)  # the evaluation after the drop
    msg = (f"unstable: over the second half, val acc changes between evaluations have a std of "
           f"{100 * spread:.3g} points; it drops {100 * drop:.3g} points at {at(f, f.step[k])}")
    return Finding("unstable", msg, int(f.step[k]), float(f.epoch[k]),
                   {"change_std": spread, "largest_drop": drop})


# (onset step, onset epoch, numbers, words) of one overfitting signal
_Signal = tuple[float, float, dict[str, float], str]


def _val_loss_rise(metrics: Mapping[str, Series], th: Thresholds) -> _Signal | None:
    """Validation loss ending ``overfit_val_loss_rise`` above its minimum while the training
    loss kept falling after that minimum; the onset is the minimum."""
    val_loss = S.finite(S.get(metrics, "val_loss"))
    curve = loss_curve(metrics)
    if len(val_loss.value) < 3 or not len(curve.value):
        return None
    i = int(np.argmin(val_loss.value))
    low, end = float(val_loss.value[i]), float(val_loss.value[-1])
    if not low > 0 or i == len(val_loss.value) - 1:
        return None
    train_then = float(np.interp(val_loss.step[i], curve.step, curve.value))
    train_end = float(curve.value[-1])
    rise = end / low - 1
    if rise <= th.overfit_val_loss_rise or train_end >= train_then:
        return None
    words = (f"val loss {end:.3g} at the end, {pct(rise)} above its minimum {low:.3g}, while train "
             f"loss fell {train_then:.3g} -> {train_end:.3g}")
    numbers = {"val_loss_min": low, "val_loss_final": end, "val_loss_rise": rise,
               "train_loss_at_min": train_then, "train_loss_final": train_end}
    return float(val_loss.step[i]), float(val_loss.epoch[i]), numbers, words


def _accuracy_gap(metrics: Mapping[str, Series], th: Thresholds) -> _Signal | None:
    """Final train accuracy more than ``overfit_gap`` above validation accuracy; the onset is
    the first trained evaluation (after step 0) from which the gap stays above it."""
    tr, va = S.finite(S.get(metrics, "train_acc")), S.finite(S.get(metrics, "val_acc"))
    _, ti, vi = np.intersect1d(tr.step, va.step, return_indices=True)  # evaluations with both
    if not ti.size or va.step[vi[-1]] <= 0:
        return None
    train_acc, val_acc = tr.value[ti], va.value[vi]
    gap = train_acc - val_acc
    if gap[-1] <= th.overfit_gap:
        return None
    # the untrained model's gap is the split's luck, not overfitting: it is no onset (a run
    # read "overfits from epoch 0" where the untrained model scored 37.5% on train, 23.8% on val)
    closed = np.flatnonzero((gap <= th.overfit_gap) | (va.step[vi] <= 0))
    k = vi[closed[-1] + 1] if closed.size else vi[0]
    words = (f"train acc {pct(train_acc[-1])}, val acc {pct(val_acc[-1])} "
             f"(gap {100 * gap[-1]:.3g} points)")
    numbers = {"train_acc": float(train_acc[-1]), "val_acc": float(val_acc[-1]), "gap": float(gap[-1])}
    return float(va.step[k]), float(va.epoch[k]), numbers, words


def check_overfitting(metrics: Mapping[str, Series], th: Thresholds) -> Finding | None:
    """Validation loss rising while training loss falls, and/or a large train/val accuracy gap.
    The onset is that of the loss signal when present (it turns first), else of the gap."""
    signals = [x for x in (_val_loss_rise(metrics, th), _accuracy_gap(metrics, th)) if x is not None]
    if not signals:
        return None
    step, epoch = signals[0][0], signals[0][1]
    numbers = {"onset_step": step}
    for signal in signals:
        numbers.update(signal[2])
    message = f"overfits from epoch {epoch:.3g}: " + "; ".join(x[3] for x in signals)
    return Finding("overfitting", message, int(step), epoch, numbers)


def check_not_converged(val_loss: Series, th: Thresholds) -> Finding | None:
    """Validation loss still falling over the last ``not_converged_window`` of training: by more
    than ``not_converged_slope`` of its level, or at more than ``not_converged_rate`` of its
    average rate over the run, and in either case by more than its own noise (``trend_noise``).
    The fall is that of a least-squares line over the window, not of two end points."""
    f = S.finite(val_loss)
    trend = tail_trend(f, th.not_converged_window)
    if trend is None or not trend.fall > 0 or not trend.start > 0:
        return None
    if trend.fall <= th.trend_noise * trend.fall_halfwidth:
        return None  # a fall inside the curve's own scatter is noise, not progress
    level = trend.fall / trend.start
    total = float(f.value[0]) - trend.end
    rate = trend.fall / total / trend.fraction if total > 0 and trend.fraction > 0 else 0.0
    if level <= th.not_converged_slope and rate <= th.not_converged_rate:
        return None
    msg = (f"not converged: val loss still falling over the last {pct(trend.fraction)} of training "
           f"({trend.start:.3g} -> {trend.end:.3g} on a line fitted to {trend.n} evaluations, noise "
           f"±{trend.fall_halfwidth:.2g}): {pct(level)} of its level, at {rate:.2g}x its average rate "
           "over the run; train longer (or raise the LR)")
    return Finding("not_converged", msg, int(f.step[-1]), float(f.epoch[-1]),
                   {"val_loss_start": trend.start, "val_loss_final": trend.end, "relative_fall": level,
                    "rate_ratio": rate, "fall_noise": trend.fall_halfwidth})


def check_lr_too_small(metrics: Mapping[str, Series], th: Thresholds) -> Finding | None:
    """The training loss barely fell, without ever having risen far (see Thresholds)."""
    curve = loss_curve(metrics)
    if len(curve.value) < 2 or not curve.initial > 0:
        return None
    initial, lowest = curve.initial, float(curve.value.min())
    fall = (initial - lowest) / initial
    peak = float(S.finite(finest_loss(metrics)[0]).value.max())
    if fall >= th.lr_too_small_drop or peak > (1 + th.lr_too_small_max_rise) * initial:
        return None
    msg = (f"LR too small: training loss fell only {pct(max(fall, 0.0))} "
           f"({initial:.3g} -> lowest {lowest:.3g}) over the whole run")
    return Finding("lr_too_small", msg, None, None,
                   {"initial_loss": initial, "lowest_loss": lowest, "relative_fall": fall})


def check_plateau(metrics: Mapping[str, Series], th: Thresholds) -> Finding | None:
    """The longest stretch where the best training loss so far made < ``plateau_progress`` of
    its total progress; reported when it spans >= ``plateau_window`` and progress followed."""
    curve = loss_curve(metrics)
    if len(curve.value) < 3 or curve.step[-1] <= curve.step[0]:
        return None
    initial = curve.initial
    best_so_far = np.minimum.accumulate(np.minimum(curve.value, initial))
    total = initial - float(best_so_far[-1])
    if not initial > 0 or total < th.lr_too_small_drop * initial:
        return None  # it barely learned at all: that is lr_too_small, not a plateau
    progress = (initial - best_so_far) / total  # monotone from 0 to 1
    # for each start i, the last point still within plateau_progress of it
    end = np.searchsorted(progress, progress + th.plateau_progress, side="left") - 1
    length = (curve.step[end] - curve.step) / (curve.step[-1] - curve.step[0])
    i = int(np.argmax(length))
    j = int(end[i])
    if length[i] < th.plateau_window or 1 - progress[j] < th.plateau_progress:
        return None
    msg = (f"plateau: training loss stuck near {curve.value[i]:.3g} from epoch {curve.epoch[i]:.3g} "
           f"to epoch {curve.epoch[j]:.3g} ({pct(length[i])} of training), then fell to "
           f"{best_so_far[-1]:.3g}")
    return Finding("plateau", msg, int(curve.step[i]), float(curve.epoch[i]),
                   {"start_step": float(curve.step[i]), "end_step": float(curve.step[j]),
                    "fraction": float(length[i]), "loss": float(curve.value[i]),
                    "final_best_loss": float(best_so_far[-1])})


def check_small_bn_batch(summary: Mapping[str, Any], th: Thresholds) -> Finding | None:
    """A BatchNorm model trained on fewer than ``th.bn_min_batch`` examples per forward pass.

    Reads the facts the trainer records (``summary["has_batchnorm"]``, ``"micro_batch_size"``);
    silent for runs that did not record them (tracked loops, runs stored before them)."""
    micro = summary.get("micro_batch_size")
    if summary.get("has_batchnorm") is not True or not isinstance(micro, int) or micro >= th.bn_min_batch:
        return None
    return Finding(
        "small_bn_batch",
        f"BatchNorm normalised batches of {micro} examples per forward pass: below "
        f"~{th.bn_min_batch} its batch statistics are noisy and can cost accuracy; train on "
        f"at least {th.bn_min_batch} per forward pass (a larger batch, or fewer micro-batches: "
        "train.accumulate / train.micro_batch_size), or use a model without BatchNorm.",
        None, None, {"micro_batch_size": float(micro), "bn_min_batch": float(th.bn_min_batch)})


def check_bn_per_process(summary: Mapping[str, Any]) -> Finding | None:
    """A BatchNorm model trained over several processes without ``train.sync_batchnorm``: each
    process normalised its own share of every batch, so the run is not the 1-process run at
    its global batch (it equals one process accumulating ``devices`` micro-batches). Reads
    ``summary["devices"]``/``"sync_batchnorm"``, which a run over processes records."""
    devices = summary.get("devices")
    if (summary.get("has_batchnorm") is not True or not isinstance(devices, int) or devices < 2
            or summary.get("sync_batchnorm") is not False):
        return None
    micro = summary.get("micro_batch_size")
    of = f" ({micro} examples per forward pass)" if isinstance(micro, int) else ""
    return Finding(
        "bn_per_process",
        f"BatchNorm normalised each of the {devices} processes' share of every batch{of}, "
        "not the global batch: its statistics, and so the updates, are those of the smaller "
        "batch; set train.sync_batchnorm = true to normalise over the global batch (one "
        "all-reduce per BatchNorm layer and step).",
        None, None, {"devices": float(devices)})


def diagnose_run(
    metrics: Mapping[str, Series],
    status: str,
    summary: Mapping[str, Any],
    th: Thresholds = Thresholds(),  # noqa: B008 - frozen, so a shared default is safe
    context: RunContext | None = None,
    error: str | None = None,
) -> list[Finding]:
    """Every finding for one run, most severe first (the order of :data:`KINDS`).

    ``context`` says what the run is judged against (see :class:`RunContext`); without one it is
    judged alone, with the number of classes from ``summary["num_classes"]`` when recorded.
    Diverged runs are judged on the points before divergence, and skip the checks that only
    make sense for a run that ended normally (not_converged, lr_too_small, plateau), and so do
    pruned runs (stopped early on purpose), which are labelled ``pruned`` with their reason
    (``error``, the store's text for the run); an exploding run skips lr_too_small. When
    nothing else was found, the run's standing is given: healthy, below_best or undertrained
    (see ``batchlab.analysis.standing``); a run without data (pending) gets an empty list.
    ``small_bn_batch`` and ``bn_per_process`` are notes given beside any of these (see
    :func:`check_small_bn_batch`, :func:`check_bn_per_process`).
    The per-layer findings (``batchlab.analysis.layers``) come from ``layer/...`` series when
    the run recorded them. Never raises.
    """
    ctx = context or RunContext()
    if ctx.n_classes is None and isinstance(summary.get("num_classes"), int):
        ctx = RunContext(summary["num_classes"], ctx.sweep_best_val_acc, ctx.sweep_best_val_loss, ctx.noise)
    train_loss = S.get(metrics, "train_loss")
    findings = [check_diverged(train_loss, status, summary), check_pruned(status, summary, error)]
    cut = S.first_nonfinite(train_loss)
    if cut is not None:
        metrics = {**metrics, "train_loss": S.head(train_loss, cut)}
    exploding = check_exploding(metrics, th)
    if status == "failed":
        # stopped by an error (its verdict), not by its training: a few steps at chance or
        # under the best say nothing of the run it would have been; a blow-up may explain it
        found = [f for f in (findings[0], exploding) if f is not None]
        return [*found, *layer_findings(metrics, status, summary, exploded=exploding is not None)]
    findings += [check_collapsed(metrics, ctx.n_classes, th), exploding,
                 check_unstable(S.get(metrics, "val_acc"), th), check_overfitting(metrics, th)]
    if findings[0] is None and findings[1] is None:
        findings.append(check_not_converged(S.get(metrics, "val_loss"), th))
        if exploding is None:
            findings.append(check_lr_too_small(metrics, th))
        findings.append(check_plateau(metrics, th))
    found = [f for f in findings if f is not None]
    # the per-layer signals, when recorded (batchlab.analysis.layers)
    if layer := layer_findings(metrics, status, summary, exploded=exploding is not None):
        found = sorted([*found, *layer], key=lambda f: KINDS.index(f.kind))
    if not found and (standing := check_standing(metrics, ctx, th)) is not None:
        found.append(standing)
    notes = [check_small_bn_batch(summary, th), check_bn_per_process(summary)]
    if any(notes):  # notes beside any standing
        found = sorted([*found, *filter(None, notes)], key=lambda f: KINDS.index(f.kind))
    return found
