"""Rules a run's own numbers imply about its diagnosis labels, checked independently of
``batchlab.analysis`` (issue 8). Not part of batchlab: ``bench/judgement.py`` imports it and
calls :func:`check_diagnosis` on every ground-truth run of its benchmark.

Only numpy is used, and none of the diagnosis code: a bug in ``batchlab.analysis`` cannot hide
itself here. The one thing shared is what "within noise" means: the two noise floors are the
diagnosis's documented tolerances (``Thresholds.noise_floor`` for an accuracy,
``Thresholds.loss_noise_floor`` for a loss), imported, so that a ``healthy`` run is checked
against the same definition of noise it was given (two definitions disagreed at the boundary).
The rules are written from the issue, not from the implementation:

1. a run whose final val acc is at chance (<= 1.5 / classes), that kept less than a quarter of
   its best gain over chance, or whose loss sits at ln(classes) after having fallen, is
   ``collapsed`` (or ``diverged``), never ``healthy``; and ``collapsed`` needs one of those;
2. ``healthy`` only for a run that converged and ends within the noise of its sweep's best (or,
   alone, reached a clearly trained level: half way from chance to perfect, and a training loss
   at most half its initial value);
3. ``exploding`` quotes true numbers: the initial loss is the loss before training went wrong
   (the first losses), the loss and the peak are values of the series, and the blow-up is real;
   any finding quoting an ``initial_loss`` quotes the first losses;
4. ``not_converged`` only when the fall over the final window is larger than the curve's noise.

Input format
------------
run_series: metric name -> series, as ``batchlab.store.Store.metrics(run_id, names)`` returns
    them (``batchlab.store.Series``: numpy arrays ``step``, ``value``, ``epoch``, ... sorted by
    step). Any object with ``step`` and ``value`` array attributes, or a dict with "step" and
    "value" lists, will do. Names read: ``val_acc`` and ``val_loss`` (per evaluation; the first
    is the untrained model at step 0), ``train_eval_loss`` (training loss in eval mode, per
    evaluation) and ``train_loss`` (per step, logged before that step's update; NaN/inf where
    it diverged). Missing metrics are fine: the rules that need them are skipped (a regression
    has no accuracy: the loss rules still apply).
kinds: the labels the diagnosis gave the run: strings ("healthy"), or findings, either objects
    with ``kind`` and ``numbers`` (``batchlab.analysis.Finding``) or dicts with "kind" and
    "numbers" (``ExperimentAnalysis.to_dict()["runs"][i]["findings"]``). Numbers are checked
    only when given.
sweep_best_val_acc: the best configuration's validation accuracy in the run's sweep, or None
    for a run judged alone.
n_classes: the number of classes, or None when unknown (the chance rules are then skipped).
sweep_noise: the sweep's accuracy noise (seed std of the best configuration) when known; the
    noise used is the largest of it, :data:`NOISE_FLOOR` and the run's own scatter (for a loss:
    of it, :data:`LOSS_NOISE_FLOOR` x the sweep's best loss and the run's own scatter).

Returns a list of violations, one sentence each with the numbers; empty when consistent.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from batchlab.analysis.findings import Thresholds

# The thresholds, each with the reason it holds for any classifier (not tuned to one case).
#: at chance: a model guessing one class or the prior scores about 1/C; 1.5/C is the issue's bound.
CHANCE_FACTOR = 1.5
#: a final accuracy keeping under a quarter of its best gain over chance lost nearly all it learned.
KEPT_FRACTION = 0.25
#: a loss within 5% of ln C is the uniform (or label-prior) prediction of an untrained model.
LOSS_BAND = 0.05
#: "after having fallen": at least a quarter of ln C below it, far outside evaluation noise.
LOSS_FALL = 0.25
#: within noise (the diagnosis's documented tolerances, one definition): two accuracies within
#: 1 point (the seed noise of small-data classifiers); two final losses within 5% of the best
#: (a single run's final loss scatters that much with the seed: on this bench's regression
#: cases one seed std of a final MSE is 1.5% to 36% of the best, and the best it is compared
#: with is itself a noisy minimum; see bench/README.md).
NOISE_FLOOR = Thresholds().noise_floor
LOSS_NOISE_FLOOR = Thresholds().loss_noise_floor
#: alone, "clearly trained" = half way from chance to perfect and a loss at most half its start.
TRAINED_LEVEL = 0.5
TRAINED_LOSS = 0.5
#: exploding: 10x the loss before training went wrong is far beyond minibatch noise.
EXPLODE_FACTOR = 10.0
#: a quoted initial loss within this factor of the first loss is "the loss before it went wrong".
INITIAL_TOLERANCE = 1.5
#: the final window of a curve (20% of training, at least 3 points) and what "still falling"
#: means there: by 5% of its level, or at half its average rate over the run.
WINDOW, MIN_POINTS, FALL_LEVEL, FALL_RATE = 0.2, 3, 0.05, 0.5
#: a fall is beyond noise when larger than the 95% two-sided Student-t half-width of the fitted
#: fall (t quantiles for 1..10 degrees of freedom; 2.0 above, within 3% of the exact value up to 30).
T975 = (12.71, 4.30, 3.18, 2.78, 2.57, 2.45, 2.36, 2.31, 2.26, 2.23)


def _arrays(series: Any) -> tuple[np.ndarray, np.ndarray]:
    """(step, value) as float arrays with only the finite values, from any accepted series."""
    if series is None:
        return np.zeros(0), np.zeros(0)
    if isinstance(series, Mapping):
        step, value = series.get("step", []), series.get("value", [])
    else:
        step, value = series.step, series.value
    s, v = np.asarray(step, dtype=float), np.asarray(value, dtype=float)
    keep = np.isfinite(v)
    return s[keep], v[keep]


def _kind_and_numbers(label: Any) -> tuple[str, dict[str, float]]:
    if isinstance(label, str):
        return label, {}
    if isinstance(label, Mapping):
        return str(label["kind"]), dict(label.get("numbers") or {})
    return str(label.kind), dict(getattr(label, "numbers", None) or {})


def _tail(step: np.ndarray, value: np.ndarray) -> dict[str, float] | None:
    """A least-squares line over the final window (see WINDOW): its fitted start, fall (start -
    end), the fall's 95% half-width ("noise"), the residual std ("scatter"), the window's share
    of the run, and the whole curve's first value. None with too few points."""
    if value.size < MIN_POINTS or step[-1] <= step[0]:
        return None
    first = min(int(np.searchsorted(step, step[-1] - WINDOW * (step[-1] - step[0]))), value.size - MIN_POINTS)
    x, y = step[first:], value[first:]
    slope, icpt = np.polyfit(x, y, 1)
    resid = y - (slope * x + icpt)
    dof = x.size - 2
    scatter = math.sqrt(float(resid @ resid) / dof) if dof > 0 else 0.0
    sxx = float(((x - x.mean()) ** 2).sum())
    span = float(x[-1] - x[0])
    t = T975[dof - 1] if 0 < dof <= len(T975) else 2.0
    return {"start": float(slope * x[0] + icpt), "fall": float(-slope * span),
            "noise": t * scatter / math.sqrt(sxx) * span if dof > 0 else 0.0, "scatter": scatter,
            "share": span / float(step[-1] - step[0]), "first": float(value[0])}


def _still_falling(step: np.ndarray, value: np.ndarray) -> str | None:
    """Why the curve is still falling beyond its noise over its final window, or None."""
    t = _tail(step, value)
    if t is None or not t["fall"] > t["noise"] or not t["start"] > 0:
        return None
    total = t["first"] - (t["start"] - t["fall"])
    rate = t["fall"] / total / t["share"] if total > 0 and t["share"] > 0 else 0.0
    level = t["fall"] / t["start"]
    if level > FALL_LEVEL or rate > FALL_RATE:
        return (f"val loss fell {t['fall']:.3g} over the final window ({100 * level:.3g}% of its level, "
                f"{rate:.2g}x its average rate; noise ±{t['noise']:.2g})")
    return None


def _collapse_reasons(series: Mapping[str, Any], n_classes: int | None) -> list[str]:
    """Why the run's numbers say it collapsed (empty when they do not)."""
    if not n_classes or n_classes < 2:
        return []
    out = []
    _, acc = _arrays(series.get("val_acc"))
    chance = 1.0 / n_classes
    if acc.size:
        final, best = float(acc[-1]), float(acc.max())
        if final <= CHANCE_FACTOR * chance:
            out.append(f"final val acc {final:.3g} <= {CHANCE_FACTOR:g}/{n_classes} "
                       f"= {CHANCE_FACTOR * chance:.3g}")
        elif best > CHANCE_FACTOR * chance and final - chance < KEPT_FRACTION * (best - chance):
            out.append(f"val acc fell from {best:.3g} to {final:.3g}, keeping under {KEPT_FRACTION:g} of its "
                       f"gain over chance {chance:.3g}")
    _, loss = _arrays(series.get("train_eval_loss"))
    if loss.size < 2:
        _, raw = _arrays(series.get("train_loss"))
        # per-step losses are noisy minibatches: judge 20 block means instead
        loss = np.array([b.mean() for b in np.array_split(raw, min(20, raw.size))]) if raw.size else raw
    ln_c = math.log(n_classes)
    at_chance = loss.size >= 2 and abs(loss[-1] - ln_c) <= LOSS_BAND * ln_c
    if at_chance and loss[:-1].min() < (1 - LOSS_FALL) * ln_c:
        out.append(f"the training loss fell to {loss[:-1].min():.3g} and ends at {loss[-1]:.3g} "
                   f"~ ln {n_classes} = {ln_c:.3g}")
    return out


def _first_loss(series: Mapping[str, Any]) -> float:
    """The loss before training could go wrong: the first per-step loss (logged before the first
    update), else the step-0 evaluation of the training loss; NaN when neither exists."""
    for name in ("train_loss", "train_eval_loss"):
        _, v = _arrays(series.get(name))
        if v.size:
            return float(v[0])
    return math.nan


def _check_exploding(series: Mapping[str, Any], numbers: dict[str, float]) -> list[str]:
    first = _first_loss(series)
    out = []
    losses = [v for name in ("train_loss", "train_eval_loss") if (v := _arrays(series.get(name))[1]).size]
    peak = max((float(v.max()) for v in losses), default=math.nan)
    loss, initial = numbers.get("loss"), numbers.get("initial_loss")
    # the blow-up is measured from the loss before training went wrong: the quoted initial loss
    # where it is one (the diagnosis quotes the median of the first steps, which can include a
    # little learning: 2.05 for a loss that began at 2.32), else the first loss
    quoted = (initial is not None and first > 0
              and 1 / INITIAL_TOLERANCE <= initial / first <= INITIAL_TOLERANCE)
    base, which = (initial, "quoted initial") if quoted else (first, "first value")
    if not peak > EXPLODE_FACTOR * base:
        out.append(f"exploding, but the loss never exceeds {EXPLODE_FACTOR:g}x its {which} {base:.3g} "
                   f"(peak {peak:.3g})")
    if loss is not None and initial is not None and loss < EXPLODE_FACTOR * initial:
        out.append(f"exploding quotes loss {loss:.3g}, under {EXPLODE_FACTOR:g}x its quoted initial "
                   f"{initial:.3g}")
    # the quoted peak is that of the series the finding reads (the finest there is): a peak of
    # either loss series is a true number (the evaluated one can peak where no step was logged)
    peaks = [float(v.max()) for v in losses]
    if "peak_loss" in numbers and not any(math.isclose(numbers["peak_loss"], p, rel_tol=1e-6) for p in peaks):
        out.append(f"exploding quotes a peak of {numbers['peak_loss']:.3g}; the series' peak is {peak:.3g}")
    if "loss" in numbers and not any(np.isclose(v, numbers["loss"], rtol=1e-6).any() for v in losses):
        out.append(f"exploding quotes a loss of {numbers['loss']:.3g} that the series never takes")
    return out


def _check_initial(kind: str, series: Mapping[str, Any], numbers: dict[str, float]) -> list[str]:
    """A quoted initial loss is the untrained model's: within INITIAL_TOLERANCE of the first
    per-step loss, or of the step-0 evaluation of the training loss (the same model measured on
    a fixed subset in eval mode: at batch 8 one minibatch's loss can lie 1.6x from it, and a
    finding that reads the evaluated curve quotes that one)."""
    quoted, first = numbers.get("initial_loss"), _first_loss(series)
    if quoted is None or not math.isfinite(first) or not first > 0:
        return []
    evaluated = _arrays(series.get("train_eval_loss"))[1]
    def within(ref: float) -> bool:
        return 1 / INITIAL_TOLERANCE <= quoted / ref <= INITIAL_TOLERANCE

    if evaluated.size and evaluated[0] > 0 and within(evaluated[0]):
        return []
    if not within(first):
        return [f"{kind} quotes an initial loss of {quoted:.3g}; the loss before training went wrong "
                f"was {first:.3g}"]
    return []


def _check_healthy(series: Mapping[str, Any], sweep_best: float | None, n_classes: int | None,
                   sweep_noise: float | None, sweep_best_loss: float | None = None) -> list[str]:
    out = []
    step, acc = _arrays(series.get("val_acc"))
    if (why := _still_falling(*_arrays(series.get("val_loss")))) is not None:
        out.append(f"healthy, but not converged: {why}")
    loss_step, val_loss = _arrays(series.get("val_loss"))
    if sweep_best_loss is not None and not acc.size and val_loss.size:
        # a regression beside its sweep: judged by its loss against the sweep's best (a noisy
        # target's best MSE need not halve the first), with noise built as a classification's
        # (the sweep's, the curve's own scatter, a floor); the floor is relative, as a loss's
        # scale is arbitrary
        tail = _tail(loss_step, val_loss)
        noise = max(sweep_noise or 0.0, LOSS_NOISE_FLOOR * abs(sweep_best_loss),
                    tail["scatter"] if tail else 0.0)
        if val_loss[-1] > sweep_best_loss + noise:
            out.append(f"healthy, but its final val loss {val_loss[-1]:.3g} is above the sweep's best "
                       f"{sweep_best_loss:.3g} (noise {noise:.2g})")
        return out
    if sweep_best is not None and acc.size:
        tail = _tail(step, acc)
        noise = max(NOISE_FLOOR, sweep_noise or 0.0, tail["scatter"] if tail else 0.0)
        if acc[-1] < sweep_best - noise:
            out.append(f"healthy, but its final val acc {acc[-1]:.3g} is {100 * (sweep_best - acc[-1]):.2g} "
                       f"points under the sweep's best {sweep_best:.3g} (noise {100 * noise:.2g} points)")
        return out
    if n_classes and n_classes >= 2 and acc.size:
        chance = 1.0 / n_classes
        level = chance + TRAINED_LEVEL * (1 - chance)
        if acc[-1] < level:
            out.append(f"healthy alone, but its final val acc {acc[-1]:.3g} is under {level:.3g}, half way "
                       "from chance to perfect")
    _, loss = _arrays(series.get("train_eval_loss"))
    if loss.size < 2:
        _, loss = _arrays(series.get("train_loss"))
    first = _first_loss(series)
    if sweep_best is None and loss.size >= 2 and first > 0:
        end = float(loss[-max(1, loss.size // 20):].mean())  # per step: the mean of the last 5%
        if end > TRAINED_LOSS * first:
            out.append(f"healthy alone, but its training loss only fell {first:.3g} -> {end:.3g} "
                       "(under-trained)")
    return out


def check_diagnosis(
    run_series: Mapping[str, Any],
    kinds: Iterable[Any],
    sweep_best_val_acc: float | None,
    n_classes: int | None,
    *,
    sweep_noise: float | None = None,
    sweep_best_val_loss: float | None = None,
) -> list[str]:
    """Violations of the rules above by the labels ``kinds`` given to the run whose series are
    ``run_series`` (see the module doc for the formats); empty when the labels are consistent."""
    labels = [_kind_and_numbers(k) for k in kinds]
    given = {k for k, _ in labels}
    out = []
    collapse = _collapse_reasons(run_series, n_classes)
    if collapse and not given & {"collapsed", "diverged"}:
        out.append(f"collapsed by its numbers ({'; '.join(collapse)}) but labelled "
                   f"{sorted(given) or 'nothing'}")
    if "collapsed" in given and not collapse:
        out.append("labelled collapsed, but it is neither at chance nor back at ln(classes) after falling"
                   if n_classes else "labelled collapsed without a number of classes to judge chance by")
    for kind, numbers in labels:
        if kind == "healthy":
            if "collapsed" in given:  # without it, the collapse rule above already says so
                out += [f"healthy while collapsed ({r})" for r in collapse]
            out += _check_healthy(run_series, sweep_best_val_acc, n_classes, sweep_noise,
                                  sweep_best_val_loss)
        elif kind == "exploding":
            out += _check_exploding(run_series, numbers)
        elif kind == "not_converged":
            tail = _tail(*_arrays(run_series.get("val_loss")))
            if tail is None or not tail["fall"] > tail["noise"]:
                fall = f"{tail['fall']:.3g} ± {tail['noise']:.2g}" if tail else "unmeasurable"
                out.append(f"not_converged, but the val loss's fall over the final window ({fall}) is "
                           "within its own noise")
        out += _check_initial(kind, run_series, numbers)
    return out
