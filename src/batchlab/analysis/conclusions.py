"""Plain-language conclusions of an experiment analysis: sentences with the numbers in them.

Pure formatting: every number here was computed elsewhere (groups, targets, scaling, diagnose);
this module only decides which facts deserve a sentence and words them.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from batchlab.analysis.diagnose import Finding, pct
from batchlab.analysis.groups import RunFacts
from batchlab.analysis.scaling import CriticalBatchFit, PowerLawFit
from batchlab.analysis.targets import DEFAULT_TARGET_FRACTION

#: How each diagnosis reads in the summary sentence "N runs <words>: <configs>".
_KIND_WORDS = {
    "exploding": "had an exploding loss",
    "unstable": "had an unstable val acc (swings between evaluations)",
    "overfitting": "overfit",
    "not_converged": "had not converged (val loss still falling at the end)",
    "lr_too_small": "barely learned (LR too small)",
    "plateau": "hit a long plateau (training loss stuck, then falling again)",
}
#: Scaling rules the fitted LR exponent is compared with.
_RULES = ((1.0, "the linear rule (lr ∝ B)"), (0.5, "the square-root rule (lr ∝ √B)"),
          (0.0, "no scaling (the same LR at every batch)"))
_MAX_LISTED = 4  # configurations named in one sentence before "and N more"


def _listing(labels: Sequence[str]) -> str:
    """Distinct labels with their run counts, the first few only."""
    counts = Counter(labels)
    named = [f"{lab} (x{n})" if n > 1 else lab for lab, n in list(counts.items())[:_MAX_LISTED]]
    more = len(counts) - _MAX_LISTED
    return "; ".join(named) + (f"; and {more} more" if more > 0 else "")


def _pts(x: float) -> str:
    """An accuracy difference in percentage points: 0.005 -> '0.5 points', 0.01 -> '1 point'."""
    text = f"{100 * x:.2g}"
    return f"{text} point" + ("" if text == "1" else "s")


def _runs(n: int) -> str:
    return f"{n} run" + ("" if n == 1 else "s")


def overview(experiment: str, facts: Sequence[RunFacts]) -> list[str]:
    if not facts:
        return [f"experiment '{experiment}' has no runs: nothing to analyse yet."]
    counts = Counter(f.status for f in facts).most_common()
    out = [f"{_runs(len(facts))} in '{experiment}': " + ", ".join(f"{n} {s}" for s, n in counts) + "."]
    if not any(f.has_data for f in facts):
        out.append("no run has recorded an evaluation yet: nothing to compare until they train "
                   "('batchlab sweep' trains pending runs).")
    diverged = [f for f in facts if f.status == "diverged"]
    if diverged and len(diverged) == len(facts):
        every = "all " if len(facts) > 1 else "the "
        out.append(f"{every}{_runs(len(facts))} diverged: no configuration is recommended; "
                   "try smaller learning rates (or a warm-up).")
    elif diverged:
        names = _listing([f.label for f in diverged])
        out.append(f"{len(diverged)} of {_runs(len(facts))} diverged: {names}.")
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
    spread = f" ± {g['best_val_acc_std']:.2g}" if g["best_val_acc_std"] is not None else ""
    seeds = f"{g['n']} seeds" if g["n"] > 1 else "1 seed"
    final = f", final {g['final_val_acc_mean']:.4g}" if g["final_val_acc_mean"] is not None else ""
    out = [f"best config: {g['label']}: best val acc {g['best_val_acc_mean']:.4g}{spread} "
           f"({seeds}{final})."]
    if best["runner_up"] is not None:
        r = best["runner_up"]
        noise = (f"seed noise (std {_pts(best['noise'])})" if best["noise_source"] == "seeds"
                 else f"the single-seed noise floor ({_pts(best['noise'])})")
        verdict = "within" if best["within_noise"] else "beyond"
        out.append(f"the best two configs differ by {_pts(best['difference'])}, {verdict} {noise}"
                   + (" (another seed could swap them)" if best["within_noise"] else "")
                   + f"; runner-up: {r['label']} (best val acc {100 * r['best_val_acc_mean']:.3g}%).")
    return out


def to_target_sentences(rows: Sequence[dict[str, Any]], target: float | None) -> list[str]:
    if target is None or not rows:
        return []
    reached = [r for r in rows if r["reached"]]
    if not reached:
        return [f"no batch size reaches the target (val acc {target:.4g}) with every seed of a "
                "non-diverging config."]
    fastest = {c: min(reached, key=lambda r, c=c: r[c]) for c in ("wall_time", "steps", "examples")}
    w, s, e = fastest["wall_time"], fastest["steps"], fastest["examples"]
    out = [f"batch {w['batch_size']} reaches the target (val acc {target:.4g}) first in wall time: "
           f"{w['wall_time']:.3g} s ({w['wall_time_label']}).",
           f"fewest steps to target: batch {s['batch_size']} ({s['steps']:,.0f} steps); fewest "
           f"examples: batch {e['batch_size']} ({e['examples']:,.0f} examples, {e['epochs']:.3g} epochs)."]
    missing = [str(r["batch_size"]) for r in rows if not r["reached"] and r["has_data"]]
    if missing:
        out.append(f"batch {', '.join(missing)} never reach{'es' if len(missing) == 1 else ''} the "
                   "target with every seed of a config that did not diverge.")
    waiting = [str(r["batch_size"]) for r in rows if not r["has_data"]]
    if waiting:
        out.append(f"batch {', '.join(waiting)}: no evaluated runs yet.")
    return out


def lr_exponent_sentence(fit: PowerLawFit | None, rows: Sequence[dict[str, Any]]) -> str | None:
    """'best LR grows as B^0.48 (R²=0.97, 4 batch sizes): close to the square-root rule'."""
    if fit is None:
        return None
    rule = min(_RULES, key=lambda r: abs(fit.alpha - r[0]))
    exponent = f"{fit.alpha:.2f}".replace("-0.00", "0.00")
    trend = ("does not change with the batch, B^0.00" if exponent == "0.00"
             else f"{'grows' if fit.alpha > 0 else 'falls'} as B^{exponent}")
    text = f"best LR {trend} (R²={fit.r2:.2f}, {fit.n} batch sizes): closest to {rule[1]}"
    lrs = np.unique([r["fit_lr"] for r in rows if r["fit_lr"]])
    bs = [r["batch_size"] for r in rows if r["fit_lr"]]
    if lrs.size >= 2 and max(bs) > min(bs):
        # a best LR can only move in whole grid steps: that is the exponent's resolution
        step = float(np.max(lrs[1:] / lrs[:-1]))
        resolution = math.log(step) / math.log(max(bs) / min(bs))
        if resolution > 0.25:
            text += (f"; the LR grid is coarse (up to x{step:.3g} apart), so the exponent is "
                     f"only resolved to about ±{resolution:.2f}")
    return text + "."


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
            f"size: {_pts(first['gap'])} at batch {first['batch_size']}, {_pts(last['gap'])} at batch "
            f"{last['batch_size']}.")


def diagnosis_sentences(runs: Sequence[tuple[RunFacts, list[Finding]]]) -> list[str]:
    """One sentence per problem kind (divergence is in the overview)."""
    out = []
    for kind, words in _KIND_WORDS.items():
        labels = [f.label for f, found in runs if any(x.kind == kind for x in found)]
        if labels:
            out.append(f"{_runs(len(labels))} {words}: {_listing(labels)}.")
    healthy = sum(any(x.kind == "healthy" for x in found) for _, found in runs)
    if healthy:
        out.append(f"{healthy} of {_runs(len(runs))} look{'s' if healthy == 1 else ''} healthy.")
    return out


def write_conclusions(
    experiment: str,
    runs: Sequence[tuple[RunFacts, list[Finding]]],
    target: float | None,
    target_given: bool,
    groups: Sequence[dict[str, Any]],
    best: dict[str, Any] | None,
    tables: tuple[Sequence[dict], Sequence[dict], Sequence[dict]],
    lr_fit: PowerLawFit | None,
    critical: CriticalBatchFit | str | None,
    noise_floor: float,
) -> list[str]:
    """Every conclusion, most important first: what ran, the target, the best config and its
    margin, time to target, the scaling fits, the generalisation gap, then diagnoses."""
    facts = [f for f, _ in runs]
    to_target, gaps, best_lr = tables
    tested = [r["batch_size"] for r in to_target]
    out = overview(experiment, facts)
    if (sentence := target_sentence(target, target_given)) is not None:
        out.append(sentence)
    out += best_sentences(best, groups) + to_target_sentences(to_target, target)
    for sentence in (lr_exponent_sentence(lr_fit, best_lr), critical_batch_sentence(critical, tested),
                     gap_sentence(gaps, noise_floor)):
        if sentence:
            out.append(sentence)
    return out + diagnosis_sentences(runs)
