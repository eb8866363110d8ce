"""Check a recommendation against what really happens: a short sweep around it.

The sweep trains the user's base configuration (the spec as written), the recommended batch
size and its neighbours (half and double, where they were measured and fit in memory), each at
the recommended LR moved by the square-root rule, for the spec's training length. The time
each takes to reach the target (95% of the best validation accuracy among them) is compared
with the predicted time, both relative to the recommended batch size; the base's time is
listed on a line of its own, labelled as the base with its LR. When the base
configuration ends better than the recommendation (by more than the noise floor), the verdict
says so plainly and names the better configuration: a recommendation is never silently worse
than what the user already had.

A run the diagnosis calls a blow-up (``BLOW_UPS``: its loss exploded, or it collapsed to
chance) is judged by where it ends, not by its best score, which came before the blow-up: the
recommended lr 1 on the CLI quick start's data scored 57.5% before its loss exploded and ended
at 53.3%, below the base's 55%, and was called better. A run that blew up and recovered to
end ahead is still ahead (it is what the user would get), and the verdict says it blew up on
the way.

A regression records no accuracy: its runs are compared by their lowest validation loss
(lower is better, within LOSS_TOLERANCE of each other counts as a tie), and the target is
that loss of the best run divided by 0.95 (``analysis.targets.default_loss_target``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchlab.analysis import analyze_experiment
from batchlab.analysis.diagnose import Thresholds
from batchlab.analysis.kinds import WORDING
from batchlab.analysis.targets import TargetHit, default_loss_target, first_hit
from batchlab.execute.inline import InlineExecutor
from batchlab.execute.sweep import run_sweep
from batchlab.probes.recommend import Recommendation
from batchlab.results import run_row
from batchlab.spec import Spec, spec_from_dict
from batchlab.store import Store

#: two runs' lowest validation losses within this fraction of each other are a tie (the
#: accuracy comparison's noise floor is absolute; a loss has no natural scale, so relative)
LOSS_TOLERANCE = 0.05
#: the diagnosis kinds (``analysis.findings.KINDS``) of a run that blew up, and the verb said of
#: it: its best score came before the blow-up, and is not what the run ends with
BLOW_UPS = {"diverged": "blew up", "exploding": "blew up", "collapsed": "collapsed"}


@dataclass(frozen=True)
class Validation:
    experiment: str
    rows: list[dict[str, Any]]  # one per run, as in the results table
    comparison: list[dict[str, Any]]  # batch size, predicted and measured relative time
    explanation: list[str]
    base_better: bool = False  # the user's base configuration beat the recommendation


def neighbours(rec: Recommendation) -> list[int]:
    """The recommended batch size and its measured, fitting halves and doubles."""
    fitting = {p.batch_size for p in rec.predictions if p.fits}
    return sorted(b for b in {rec.batch_size // 2, rec.batch_size, rec.batch_size * 2}
                  if b in fitting)


def validation_spec(spec: Spec, rec: Recommendation) -> Spec:
    """The user's base configuration (the first point, as written) and the neighbours."""
    raw = spec.model_dump(mode="json")
    raw["name"] = f"{spec.name}-validate"
    points: list[dict[str, Any]] = [{}]
    for b in neighbours(rec):
        point: dict[str, Any] = {"train.batch_size": b,
                                 "train.lr": float(f"{rec.lr * math.sqrt(b / rec.batch_size):.3g}"),
                                 "train.scale_lr": "none"}
        if rec.warmup_steps:
            point.update({"train.schedule.warmup": rec.warmup_steps,
                          "train.schedule.warmup_unit": "step"})
        points.append(point)
    raw["sweep"] = {"points": points}
    return spec_from_dict(raw, source="the validation sweep")


def against_base(rec_cfg: tuple[int, float], rec_score: float | None, base_cfg: tuple[int, float],
                 base_score: float | None, noise: float = Thresholds().noise_floor,
                 times: tuple[float | None, float | None] = (None, None),
                 loss: bool = False,
                 blew_up: tuple[str | None, str | None] = (None, None)) -> tuple[bool, str]:
    """(base is better, the sentence) from the scores of the recommended and the base
    configuration, each ``(batch, lr)``: their best validation accuracy, or with ``loss`` (a
    regression) their lowest validation loss, lower being better and ``LOSS_TOLERANCE``
    (relative) replacing ``noise``. A score that is not finite (NaN, or an infinite loss or
    ``-inf`` accuracy: a run that diverged) loses to any finite one: a recommendation that
    diverged where the base did not is said to be worse, in the same words. ``times``: their
    seconds to the target, when known, quoted where the recommendation is faster but ends worse
    and where the two end within the noise (the tie is then said with both times).
    ``blew_up``: for the recommended and the base run, what happened when the diagnosis calls
    it a blow-up (``BLOW_UPS``; e.g. "blew up (its training loss rose to 10.4x its start at
    epoch 1.5; ...)"), else None: said beside the scores, which for such a run are where it
    ends (``_ended``); a recommendation that blew up and ends behind is said to, with "lower
    its LR (or warm up) and validate again" (pure)."""
    def name(cfg: tuple[int, float]) -> str:
        return f"batch {cfg[0]}, lr {cfg[1]:.3g}"

    if base_cfg == rec_cfg:
        return False, f"The recommendation is your base configuration ({name(base_cfg)})."
    metric = "lowest validation loss" if loss else "best validation accuracy"
    if base_score is None or rec_score is None:
        return False, ("No comparison with your base configuration: a run has no validation "
                       f"{'loss' if loss else 'accuracy'}.")
    if not (math.isfinite(rec_score) or math.isfinite(base_score)):
        return False, (f"Neither the recommendation ({name(rec_cfg)}) nor your base configuration "
                       f"({name(base_cfg)}) ended with a finite {metric}: both diverged. Lower "
                       "the LR (or warm up) and validate again.")
    rec_text, base_text = _shown(rec_score, loss), _shown(base_score, loss)
    rec_blew, base_blew = blew_up
    if rec_blew and base_blew:
        return False, (f"Neither the recommendation ({name(rec_cfg)}) nor your base configuration "
                       f"({name(base_cfg)}) trained cleanly: the recommendation's run {rec_blew}, "
                       f"and yours {base_blew}. Lower the LR (or warm up) and validate again.")
    # a run that blew up is scored where it ends (its best came before the blow-up)
    rec_text += " at its end" if rec_blew and math.isfinite(rec_score) else ""
    base_text += " at its end" if base_blew and math.isfinite(base_score) else ""
    if not (math.isfinite(rec_score) and math.isfinite(base_score)):
        # one run diverged: the other is ahead, whatever the margin (inf - inf is NaN); no tie
        base_ahead, rec_ahead, within = math.isfinite(base_score), math.isfinite(rec_score), ""
    elif loss:  # lower is better, within a margin relative to the losses' own size
        margin = LOSS_TOLERANCE * max(abs(base_score), abs(rec_score))
        base_ahead, rec_ahead = base_score < rec_score - margin, rec_score < base_score - margin
        within = f"{LOSS_TOLERANCE:.0%}"
    else:
        base_ahead, rec_ahead = base_score > rec_score + noise, rec_score > base_score + noise
        within = f"{noise:.0%}"
    if base_ahead:
        rec_s, base_s = times
        faster = (f" The recommendation only reaches the target sooner ({rec_s:.3g} s vs "
                  f"{base_s:.3g} s)." if rec_s is not None and base_s is not None and rec_s < base_s
                  else "")
        blew = (f" The recommendation's run {rec_blew}; to train at it, lower its LR (or warm "
                "up) and validate again." if rec_blew else "")
        return True, (f"Your base configuration ({name(base_cfg)}) is BETTER than the recommendation "
                      f"({name(rec_cfg)}): {metric} {base_text} vs {rec_text}."
                      f"{faster} Keep {name(base_cfg)}.{blew}")
    if rec_ahead:
        how = (f" Its run {rec_blew} on the way and still ends ahead." if rec_blew else
               f" Your base's run {base_blew}." if base_blew else "")
        return False, (f"The recommendation ({name(rec_cfg)}) beats your base configuration "
                       f"({name(base_cfg)}): {metric} {rec_text} vs {base_text}.{how}")
    tie = (f"; its run {rec_blew}: keep {name(base_cfg)}, or lower its LR (or warm up) and "
           "validate again." if rec_blew else f"; {_times_to_target(*times)}")
    return False, (f"The recommendation ({name(rec_cfg)}) and your base configuration "
                   f"({name(base_cfg)}) end within {within} of each other ({metric} {rec_text} "
                   f"vs {base_text}){tie}")


def _times_to_target(rec_s: float | None, base_s: float | None) -> str:
    """What settles a tie in scores: the two runs' seconds to the target, said with their
    numbers (the sentence must read on its own, not point at lines that may be missing)."""
    if rec_s is not None and base_s is not None:
        faster = ("equally fast" if rec_s == base_s else
                  "the recommendation is faster" if rec_s < base_s else "your base is faster")
        return (f"to the target: the recommendation {rec_s:.3g} s, your base {base_s:.3g} s "
                f"({faster}).")
    if rec_s is not None:
        return f"only the recommendation reached the target ({rec_s:.3g} s)."
    if base_s is not None:
        return f"only your base reached the target ({base_s:.3g} s)."
    return "neither reached the target."


def _shown(score: float, loss: bool) -> str:
    """A score as the comparison quotes it: "diverged" when it is not finite."""
    if not math.isfinite(score):
        return "diverged"
    return f"{score:.4g}" if loss else f"{score:.1%}"


def compare(rec: Recommendation, measured: dict[int, float | None],
            lrs: dict[int, float] | None = None,
            base: tuple[int, float, float | None] | None = None) -> tuple[list[dict], list[str]]:
    """Predicted vs measured time to target, both relative to the recommended batch (pure).

    ``measured``: seconds to the target by batch size (None: not reached). ``lrs``: each
    batch's LR, named beside it when given ("batch 16 (lr 0.05): ..."), so a line cannot be
    taken for the base's run at the same batch. ``base``: the user's base run as (batch, lr,
    seconds to the target or None): its own line, labelled as the base, follows the
    neighbours' (no prediction: the probes predict the recommended LR's runs only).
    Returns the comparison rows (neighbours only) and the lines: one per neighbour, the base's,
    then which neighbour was fastest.
    """
    predicted = {p.batch_size: p.relative_time for p in rec.predictions}
    base_p, base_m = predicted[rec.batch_size], measured.get(rec.batch_size)
    rows, lines = [], []
    for b in sorted(measured):
        m = measured[b]
        rel_p = predicted[b] / base_p
        rel_m = m / base_m if (m is not None and base_m) else None
        rows.append({"batch_size": b, "predicted": rel_p, "measured": rel_m,
                     "measured_seconds": m})
        label = f"batch {b}" if lrs is None else f"batch {b} (lr {lrs[b]:.3g})"
        if m is None:
            lines.append(f"{label}: predicted x{rel_p:.2f}; did not reach the target.")
        elif rel_m is None:  # it reached the target, the recommended batch did not: no ratio
            lines.append(f"{label}: predicted x{rel_p:.2f} the recommended time; reached the "
                         f"target ({m:.3g} s), the recommended batch did not.")
        else:
            lines.append(f"{label}: predicted x{rel_p:.2f} the recommended time, measured "
                         f"x{rel_m:.2f} ({m:.3g} s to target).")
    if base is not None:
        lines.append(_base_line(*base, base_m))
    reached = {b: m for b, m in measured.items() if m is not None}
    if reached:
        fastest = min(reached, key=reached.__getitem__)
        verdict = "was" if fastest == rec.batch_size else f"was not (batch {fastest} was)"
        lines.append(f"The recommended batch {rec.batch_size} {verdict} the fastest to the target.")
    else:
        lines.append("No run reached the target: train longer (train.epochs) to validate.")
    return rows, lines


def _base_line(batch: int, lr: float, seconds: float | None, rec_seconds: float | None) -> str:
    """The base run's time to the target, beside the recommended batch's (``rec_seconds``)."""
    label = f"your base configuration (batch {batch}, lr {lr:.3g})"
    if seconds is None:
        return f"{label}: did not reach the target."
    if not rec_seconds:
        return f"{label}: reached the target ({seconds:.3g} s), the recommended batch did not."
    return (f"{label}: measured x{seconds / rec_seconds:.2f} the recommended time "
            f"({seconds:.3g} s to target).")


def validate_recommendation(spec: Spec, rec: Recommendation, store_path: Path,
                            **progress: Any) -> Validation:
    """Train the validation sweep into the store and compare with the prediction and with the
    user's base configuration. ``progress``: ``run_sweep``'s ``on_event`` / ``on_plan`` /
    ``on_notice`` observers (the command line's progress bars)."""
    vspec = validation_spec(spec, rec)
    with Store(store_path) as store:
        out = run_sweep(vspec, store, InlineExecutor(), **progress)
        analysis = analyze_experiment(store, vspec.name)
        # a regression records no accuracy, so no accuracy target: time to a loss target
        regression = not any(isinstance(a.summary.get("best_val_acc"), float) for a in analysis.runs)
        hits = _loss_hits(store, analysis.runs) if regression else {a.run_id: a.hit for a in analysis.runs}
    by_run = {(a.config["train"]["batch_size"], a.config["train"]["lr"]): a for a in analysis.runs}
    lrs = {p["train.batch_size"]: p["train.lr"] for p in vspec.sweep.points[1:]}
    measured = {b: (hit.wall_time if (a := by_run.get((b, lr))) and (hit := hits[a.run_id]) else None)
                for b, lr in lrs.items()}
    base = next(a for a in analysis.runs if not {k: v for k, v in a.point.items() if k != "train.seed"})
    base_cfg = (base.config["train"]["batch_size"], base.config["train"]["lr"])
    mine = by_run.get((rec.batch_size, lrs[rec.batch_size]))
    base_s = base_hit.wall_time if (base_hit := hits[base.run_id]) else None
    # the base has a line of its own: the verdict compares with it, and at the recommended
    # batch size a bare "batch 16" line could be taken for either run
    comparison, lines = compare(rec, measured, lrs, (*base_cfg, base_s))
    better, line = against_base((rec.batch_size, lrs[rec.batch_size]),
                                _ended(mine, regression) if mine else None,
                                base_cfg, _ended(base, regression),
                                times=(measured.get(rec.batch_size), base_s), loss=regression,
                                blew_up=(blow_up(mine, regression) if mine else None,
                                         blow_up(base, regression)))
    return Validation(vspec.name, [run_row(r) for r in out.records], comparison, [*lines, line], better)


def blow_up(run: Any, regression: bool) -> str | None:
    """How ``run`` (an ``analysis.experiment.RunAnalysis``) blew up, in words, when its
    diagnosis has a ``BLOW_UPS`` finding, with what its validation metric ends at; else None.
    E.g. "blew up (its training loss rose to 10.4x its start at epoch 1.5; it ends at 53.3%
    validation accuracy)"."""
    f = next((f for f in run.findings if f.kind in BLOW_UPS), None)
    if f is None:
        return None
    words = WORDING[f.kind].say(f)
    end = run.summary.get("final_val_loss" if regression else "final_val_acc")
    # a collapse's words already say where it ends; a diverged run ends at no number
    if f.kind != "collapsed" and isinstance(end, float) and math.isfinite(end):
        words += (f"; it ends at {_shown(end, regression)} validation "
                  f"{'loss' if regression else 'accuracy'}")
    return f"{BLOW_UPS[f.kind]} ({words})"


def _ended(run: Any, regression: bool) -> float | None:
    """What a run is compared by: its lowest validation loss (a regression) or best accuracy;
    for a run that diverged, an infinite loss (-inf accuracy); for one whose loss exploded or
    that collapsed (``blow_up``), its final one: its best before the blow-up is not what it
    ends with."""
    if run.status == "diverged":
        return math.inf if regression else -math.inf
    if blow_up(run, regression) is not None:
        return run.summary.get("final_val_loss" if regression else "final_val_acc")
    return run.summary.get("best_val_loss" if regression else "best_val_acc")


def _loss_hits(store: Store, runs: list[Any]) -> dict[str, TargetHit | None]:
    """Each run's first crossing of the loss target (``default_loss_target`` over the runs'
    lowest validation losses; diverged runs set no bar), by run id."""
    lowest = [a.summary.get("best_val_loss", math.nan) for a in runs if a.status != "diverged"]
    target = default_loss_target([x for x in lowest if isinstance(x, float)])
    return {a.run_id: first_hit(store.metrics(a.run_id, ["val_loss"])["val_loss"], target,
                                higher_is_better=False) for a in runs}
