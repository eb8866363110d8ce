"""Plain-language conclusions of an experiment analysis: sentences with the numbers in them.

Pure formatting: every number here was computed elsewhere (groups, targets, scaling, diagnose);
this module only decides which facts deserve a sentence and words them.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from batchlab.analysis.diagnose import Finding, pct
from batchlab.analysis.groups import RunFacts
from batchlab.analysis.kinds import SUMMARY_ORDER, WORDING
from batchlab.analysis.metric import experiment_metric, metric_of, points
from batchlab.analysis.scaling import SCALING_RULES, CriticalBatchFit, ExponentVerdict, PowerLawFit
from batchlab.analysis.targets import DEFAULT_TARGET_FRACTION

_MAX_LISTED = 4  # configurations named in one sentence before "and N more"


def listing(labels: Sequence[str]) -> str:
    """Distinct labels with their run counts, the first few only."""
    counts = Counter(labels)
    named = [f"{lab} (x{n})" if n > 1 else lab for lab, n in list(counts.items())[:_MAX_LISTED]]
    more = len(counts) - _MAX_LISTED
    return "; ".join(named) + (f"; and {more} more" if more > 0 else "")


def _runs(n: int) -> str:
    return f"{n} run" + ("" if n == 1 else "s")


def overview(experiment: str, facts: Sequence[RunFacts]) -> list[str]:
    if not facts:
        return [f"experiment '{experiment}' has no runs: nothing to analyse yet."]
    counts = Counter(f.status for f in facts).most_common()
    out = [f"{_runs(len(facts))} in '{experiment}': " + ", ".join(f"{n} {s}" for s, n in counts) + "."]
    metric = experiment_metric(facts)
    if not any(metric.has(f) for f in facts):
        out.append("no run has recorded an evaluation yet: nothing to compare until they train "
                   "('batchlab sweep' trains pending runs).")
    diverged = [f for f in facts if f.status == "diverged"]
    if diverged and len(diverged) == len(facts):
        every = "all " if len(facts) > 1 else "the "
        out.append(f"{every}{_runs(len(facts))} diverged: no configuration is recommended; "
                   "try smaller learning rates (or a warm-up).")
    elif diverged:
        names = listing([f.label for f in diverged])
        out.append(f"{len(diverged)} of {_runs(len(facts))} diverged: {names}.")
    if pruned := [f for f in facts if f.status == "pruned"]:
        out.append(f"{len(pruned)} of {_runs(len(facts))} stopped early by sweep.prune (shown, "
                   f"never ranked best; why: each run's findings): {listing([f.label for f in pruned])}.")
    return out


def target_sentence(target: float | None, given: bool) -> str | None:
    if target is None:
        return None
    if given:
        return f"target: val acc {target:.4g} (given)."
    return (f"target: {pct(DEFAULT_TARGET_FRACTION)} of the best val acc reached "
            f"({target / DEFAULT_TARGET_FRACTION:.4g}), i.e. val acc {target:.4g}.")


def best_sentences(best: dict[str, Any] | None, groups: Sequence[dict[str, Any]]) -> list[str]:
    if best is None:
        if any(g["n"] for g in groups):
            return ["no configuration qualifies as best: every one with data diverged for at least one seed."]
        return []
    g = best["group"]
    m = metric_of(g)  # a loss's differences and noise are relative: said as percentages
    spread = f" ± {g[m.std]:.2g}" if g[m.std] is not None else ""
    seeds = f"{g['n']} seeds" if g["n"] > 1 else "1 seed"
    final = f", final {g[m.final_mean]:.4g}" if g[m.final_mean] is not None else ""
    out = [f"{m.preamble}best config: {g['label']}: {m.best_name} {g[m.mean]:.4g}{spread} "
           f"({seeds}{final})."]
    if best["runner_up"] is not None:
        r = best["runner_up"]
        noise = (f"seed noise (std {m.diff(best['noise'])})" if best["noise_source"] == "seeds"
                 else f"the single-seed noise floor ({m.diff(best['noise'])})")
        verdict = "within" if best["within_noise"] else "beyond"
        out.append(f"the best two configs differ by {m.lead(best['difference'])}, {verdict} {noise}"
                   + (" (another seed could swap them)" if best["within_noise"] else "")
                   + f"; runner-up: {r['label']} ({m.best_name} {m.fmt(r[m.mean])}).")
    return out


def to_target_sentences(rows: Sequence[dict[str, Any]], target: float | None) -> list[str]:
    if target is None or not rows:
        return []
    reached = [r for r in rows if r["reached"]]
    if not reached:
        return [f"no batch size reaches the target (val acc {target:.4g}) with every seed of a "
                "non-diverging config."]
    # a clock no run has (None: an imported log without times or sizes) is not spoken of
    fastest = {c: min((r for r in reached if r[c] is not None), key=lambda r, c=c: r[c], default=None)
               for c in ("wall_time", "steps", "examples", "epochs")}
    w, s, e, ep = fastest["wall_time"], fastest["steps"], fastest["examples"], fastest["epochs"]
    out = []
    if w is not None:
        out.append(f"batch {w['batch_size']} reaches the target (val acc {target:.4g}) first in "
                   f"wall time: {w['wall_time']:.3g} s ({w['wall_time_label']}).")
    fewest = []
    if s is not None:
        fewest.append(f"fewest steps to target: batch {s['batch_size']} ({s['steps']:,.0f} steps)")
    if e is not None:
        epochs = f", {e['epochs']:.3g} epochs" if e["epochs"] is not None else ""
        fewest.append(f"fewest examples: batch {e['batch_size']} ({e['examples']:,.0f} examples{epochs})")
    elif ep is not None:
        fewest.append(f"fewest epochs to target: batch {ep['batch_size']} ({ep['epochs']:.3g} epochs)")
    if fewest:
        out.append(f"{'; '.join(fewest)}.")
    if not out:
        out.append(f"batch {', '.join(str(r['batch_size']) for r in reached)} reach"
                   f"{'es' if len(reached) == 1 else ''} the target (val acc {target:.4g}).")
    missing = [str(r["batch_size"]) for r in rows if not r["reached"] and r["has_data"]]
    if missing:
        out.append(f"batch {', '.join(missing)} never reach{'es' if len(missing) == 1 else ''} the "
                   "target with every seed of a config that did not diverge.")
    waiting = [str(r["batch_size"]) for r in rows if not r["has_data"]]
    if waiting:
        out.append(f"batch {', '.join(waiting)}: no evaluated runs yet.")
    return out


def _rule_words(name: str) -> str:
    return next(words for n, _, words in SCALING_RULES if n == name)


def _what_would_tell(v: ExponentVerdict) -> str:
    """The half-width that would leave one rule in the interval, and what would get there."""
    distances = sorted(abs(v.alpha - a) for _, a, _ in SCALING_RULES)
    need = distances[1]  # below the distance to the second-nearest rule, only the nearest is left
    tips = []
    if v.grid_halfwidth is not None and v.grid_halfwidth >= need and v.grid_ratio is not None:
        tips.append(f"a finer LR grid (steps of x{v.grid_ratio:.3g} limit α to ±{v.grid_halfwidth:.2f}; "
                    f"steps of x{v.batch_ratio ** need:.3g} would give ±{need:.2f})")
    if not math.isfinite(v.fit_halfwidth):
        tips.append(f"more batch sizes ({v.n} fit a line exactly: no error estimate)")
    elif v.fit_halfwidth >= need:
        tips.append(f"more batch sizes (the fit's own 95% error is ±{v.fit_halfwidth:.2f} with {v.n})")
    tips.append(f"a wider range of batch sizes (now x{v.batch_ratio:.3g})")
    return f"to tell them apart the interval must shrink below ±{need:.2f}: " + ", ".join(tips)


def lr_exponent_sentence(fit: PowerLawFit | None, verdict: ExponentVerdict | None) -> str | None:
    """'best LR grows as B^0.48 ± 0.10 (95%; R²=0.97, 4 batch sizes): the square-root rule ...',
    naming a rule only when the interval excludes the others, else saying it cannot tell and
    what would."""
    if fit is None:
        return None
    exponent = f"{fit.alpha:.2f}".replace("-0.00", "0.00")
    trend = ("does not change with the batch, B^0.00" if exponent == "0.00"
             else f"{'grows' if fit.alpha > 0 else 'falls'} as B^{exponent}")
    if verdict is None or not math.isfinite(verdict.half_width):
        text = f"best LR {trend} (R²={fit.r2:.2f}, {fit.n} batch sizes, no error estimate)"
    else:
        text = f"best LR {trend} ± {verdict.half_width:.2f} (95%; R²={fit.r2:.2f}, {fit.n} batch sizes)"
    if verdict is None:
        return text + ": cannot tell which scaling rule it follows."
    others = [_rule_words(n) for n, _, _ in SCALING_RULES if n != verdict.rule]
    if verdict.rule is not None:
        return text + f": {_rule_words(verdict.rule)}; the interval excludes {' and '.join(others)}."
    if not verdict.consistent:
        return text + ": none of the scaling rules (linear, square-root, none) lies within the interval."
    held = [_rule_words(n) for n in verdict.consistent]
    return (text + f": cannot tell apart {', '.join(held[:-1])} and {held[-1]} (all lie within the "
            "interval); " + _what_would_tell(verdict) + ".")


def critical_batch_sentence(fit: CriticalBatchFit | str | None, tested: Sequence[float]) -> str | None:
    if fit is None:
        return None
    if isinstance(fit, str):
        return f"no critical batch size: {fit}."
    text = (f"critical batch size ≈ {fit.b_crit:.3g} (S_min {fit.s_min:,.0f} steps, E_min "
            f"{fit.e_min:,.0f} examples; fit error {pct(fit.rmse)} rms over {fit.n} batch sizes)")
    if tested and not min(tested) <= fit.b_crit <= max(tested):
        text += ", extrapolated beyond the batch sizes tested"
    return text + "."


def gap_sentence(rows: Sequence[dict[str, Any]], noise_floor: float) -> str | None:
    known = [r for r in rows if r["gap"] is not None]
    if len(known) < 2:
        return None
    first, last = known[0], known[-1]
    change = last["gap"] - first["gap"]
    trend = ("grows" if change > noise_floor else "shrinks" if change < -noise_floor
             else "stays about the same")
    return (f"generalisation gap (final train - val acc, best config per batch) {trend} with batch "
            f"size: {points(first['gap'])} at batch {first['batch_size']}, {points(last['gap'])} at batch "
            f"{last['batch_size']}.")


def kind_sentence(kind: str, runs: Sequence[tuple[RunFacts, list[Finding]]]) -> str | None:
    """'N runs <words>: <configs>.' for the runs with a finding of ``kind`` (one of
    :func:`summary_kinds`, or 'healthy': 'N of M runs look healthy.'); None when no run has one."""
    labels = [f.label for f, found in runs if any(x.kind == kind for x in found)]
    if not labels or kind not in (*SUMMARY_ORDER, "healthy"):
        return None
    if kind == "healthy":
        n = len(labels)
        return f"{n} of {_runs(len(runs))} look{'s' if n == 1 else ''} healthy."
    return f"{_runs(len(labels))} {WORDING[kind].summary}: {listing(labels)}."


def summary_kinds() -> tuple[str, ...]:
    """The finding kinds :func:`kind_sentence` words, in their order (every kind with summary
    words in ``kinds.WORDING``)."""
    return SUMMARY_ORDER


def diagnosis_sentences(runs: Sequence[tuple[RunFacts, list[Finding]]]) -> list[str]:
    """One sentence per problem kind (divergence is in the overview), then the healthy count."""
    return [s for kind in (*SUMMARY_ORDER, "healthy") if (s := kind_sentence(kind, runs))]


@dataclass(frozen=True)
class Evidence:
    """What the words of an experiment are written from (computed by ``analyze_runs``): its
    name, each run's facts with its findings, the target (and whether it was given), the
    configuration groups, the best pick, the per-batch tables (to target, gap, best LR), the
    LR-vs-batch fit and its verdict, the critical-batch fit or why there is none, and the
    noise floor."""

    experiment: str
    runs: Sequence[tuple[RunFacts, list[Finding]]]
    target: float | None
    target_given: bool
    groups: Sequence[dict[str, Any]]
    best: dict[str, Any] | None
    tables: tuple[Sequence[dict], Sequence[dict], Sequence[dict]]
    lr_fit: PowerLawFit | None
    critical: CriticalBatchFit | str | None
    noise_floor: float
    lr_rule: ExponentVerdict | None = None


def write_conclusions(e: Evidence) -> list[str]:
    """Every conclusion, most important first: what ran, the target, the best config and its
    margin, time to target, the scaling fits, the generalisation gap, then diagnoses."""
    experiment, runs, target, target_given, groups, best = (
        e.experiment, e.runs, e.target, e.target_given, e.groups, e.best)
    tables, lr_fit, critical, noise_floor, lr_rule = e.tables, e.lr_fit, e.critical, e.noise_floor, e.lr_rule
    facts = [f for f, _ in runs]
    to_target, gaps, _ = tables
    tested = [r["batch_size"] for r in to_target]
    out = overview(experiment, facts)
    if (sentence := target_sentence(target, target_given)) is not None:
        out.append(sentence)
    out += best_sentences(best, groups) + to_target_sentences(to_target, target)
    for sentence in (lr_exponent_sentence(lr_fit, lr_rule), critical_batch_sentence(critical, tested),
                     gap_sentence(gaps, noise_floor)):
        if sentence:
            out.append(sentence)
    return out + diagnosis_sentences(runs)
