"""The answer first: what to pick, how sure, why in at most three sentences, then the findings
grouped by question, each one plain sentence with its numbers one level down.

Pure: every number was computed elsewhere (groups, targets, scaling, diagnose), and the dense
sentences with the statistics are those of :mod:`batchlab.analysis.conclusions`; this module
only chooses the plain sentence that leads each of them. Every conclusion lands in the
``details`` of the pick or of one finding, so nothing the analysis concluded is dropped. The
report and the dashboard both draw this one :class:`Answer`, so the two never disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from batchlab.analysis import conclusions as C
from batchlab.analysis.findings import Finding, pct
from batchlab.analysis.groups import RunFacts, ranked
from batchlab.analysis.kinds import never_rose
from batchlab.analysis.metric import metric_of
from batchlab.analysis.patterns import cause, problem_sentence, problems
from batchlab.analysis.scaling import SCALING_RULES, CriticalBatchFit, ExponentVerdict, PowerLawFit

#: The questions the findings answer, in reading order.
WORKED, FAILED, TIME, LR = ("What worked", "What failed and why", "Batch size vs time",
                            "Batch size vs LR")
QUESTIONS = (WORKED, FAILED, TIME, LR)
MAX_WHY = 3
MAX_NAMED = 3  # configurations named in the "how sure" line before "and N more"


@dataclass(frozen=True)
class Point:
    """One finding: a plain ``sentence`` and the ``details`` with its numbers (the analysis's
    dense conclusions), shown on expanding it."""

    sentence: str
    details: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Answer:
    """What to pick and why, for the top of the report and of the dashboard.

    headline: 'Pick batch 128, lr 0.1, step(...).' or why nothing can be picked.
    pick: the picked configuration (the best group: label, batch_size, lr, schedule,
        best_val_acc, best_val_acc_std, best_val_loss, best_val_loss_std, metric (what ranked
        it: 'val_acc', or 'val_loss' without accuracies), n, wall_time_to_target,
        steps_to_target, reached), or None.
    score: its best val acc (lowest val loss) with its seed spread, and its time to the target.
    sure: how sure: beyond or within seed noise of the runner-up, and which configurations
        are within noise of it.
    why: at most three plain sentences (the most telling findings).
    details: the dense sentences behind the pick (runs per status, target, best and runner-up).
    groups: question (one of :data:`QUESTIONS`) -> its findings; a question without any is left
        out.
    """

    headline: str
    pick: dict[str, Any] | None
    score: str
    sure: str
    why: list[str]
    details: list[str]
    groups: dict[str, list[Point]]

    def sentences(self) -> list[str]:
        """Every plain sentence, in reading order (for tests and plain-text output)."""
        return [self.headline, self.score, self.sure, *self.why,
                *(p.sentence for points in self.groups.values() for p in points)]


#: run statuses of a sweep not done yet (``batchlab sweep`` of the spec trains or resumes them)
UNFINISHED = ("pending", "running", "interrupted")


def _names(groups: Sequence[dict[str, Any]]) -> str:
    named = [g["label"] for g in groups[:MAX_NAMED]]
    more = len(groups) - MAX_NAMED
    return "; ".join(named) + (f"; and {more} more" if more > 0 else "")


def _pick(best: dict[str, Any]) -> dict[str, Any]:
    g = best["group"]
    return {"label": g["label"], "batch_size": g["batch_size"], "lr": g["lr"],
            "schedule": g["schedule"], "best_val_acc": g["best_val_acc_mean"],
            "best_val_acc_std": g["best_val_acc_std"], "n": g["n"], "reached": g["reached"],
            "wall_time_to_target": g["wall_time_to_target_mean"],
            "steps_to_target": g["steps_to_target_mean"],
            "best_val_loss": g["best_val_loss_mean"], "best_val_loss_std": g["best_val_loss_std"],
            "metric": g["metric"]}


def _score(pick: dict[str, Any], target: float | None) -> str:
    m = metric_of(pick)
    std = pick[f"{m.best_key}_std"]
    spread = (f" ± {m.pm(std)} over {pick['n']} seeds" if std is not None
              else f" ({pick['n']} seed)" if pick["n"] == 1 else "")
    text = f"{m.best_name[:1].upper()}{m.best_name[1:]} {m.fmt(pick[m.best_key])}{spread}"
    if target is None:
        return text + "."
    if pick["reached"]:
        # in the clocks the runs have: an imported log may hold no times, or no batch size
        wall, steps = pick["wall_time_to_target"], pick["steps_to_target"]
        steps_text = f"{steps:,.0f} steps" if steps is not None else None
        when = (f" in {wall:.3g} s" + (f" ({steps_text})" if steps_text else "") if wall is not None
                else f" in {steps_text}" if steps_text else "")
        return text + f"; it reaches the target (val acc {pct(target)}){when}."
    return text + f"; not every seed reaches the target (val acc {pct(target)})."


def _sure(best: dict[str, Any], groups: Sequence[dict[str, Any]]) -> str:
    """Beyond or within the noise of the runner-up, naming every configuration within it."""
    if best["runner_up"] is None:
        return "Only one configuration qualifies: there is nothing to compare it with."
    noise = best["noise"]
    source = "seed noise" if best["noise_source"] == "seeds" else "the single-seed noise floor"
    m = metric_of(best["group"])  # a loss's lead and noise: fractions of the best's loss
    top = best["group"][m.mean]
    close = [g for g in ranked(groups)[1:] if m.behind(top, g[m.mean]) <= noise]
    if not close:
        return (f"Sure: it leads the runner-up ({best['runner_up']['label']}) by "
                f"{m.lead(best['difference'])}, beyond {source} ({m.diff(noise)}).")
    return (f"Not sure: within {source} ({m.diff(noise)}) of it: {_names(close)}. Another seed "
            "could rank any of these first; more seeds (sweep.repeats) would tell them apart.")


def _with(kind: str, runs: Sequence[tuple[RunFacts, list[Finding]]]) -> list[RunFacts]:
    return [f for f, found in runs if any(x.kind == kind for x in found)]


def _worked(runs: Sequence[tuple[RunFacts, list[Finding]]]) -> list[Point]:
    out = []
    # their final val acc against the best configuration's, as each run's own diagnosis says
    for kind, words in (("healthy", "trained without a problem and end within noise of the best"),
                        ("below_best", "trained without a problem but end below the best by more "
                                       "than the noise")):
        if facts := _with(kind, runs):
            details = [s for s in (C.kind_sentence(kind, runs),) if s]
            if kind == "healthy":
                details.append(f"healthy: {C.listing([f.label for f in facts])}.")
            out.append(Point(f"{len(facts)} of {len(runs)} runs {words}.", details))
    return out


def _failed(runs: Sequence[tuple[RunFacts, list[Finding]]], overview: Sequence[str]) -> list[Point]:
    """One point per cause (see ``patterns``); a kind said only of runs counted under another
    cause (a pruned run's unstable val acc) goes into the details of the first of them."""
    every = [f for f, _ in runs]
    found = problems(runs)
    out = [Point(problem_sentence(p, every), _kind_details(p.kind, len(p.runs), runs)) for p in found]
    lines = {"diverged": [s for s in overview[1:] if " diverged" in s],
             "pruned": [s for s in overview[1:] if "sweep.prune" in s]}
    for kind in (*C.summary_kinds(), "diverged", "pruned"):
        said = C.kind_sentence(kind, runs) if kind in C.summary_kinds() else None
        sentence = [said] if said else lines.get(kind, [])
        if kind == "below_best" or not sentence or any(sentence[0] in p.details for p in out):
            continue
        ids = {f.run_id for f in _with(kind, runs)} or {f.run_id for f in every if f.status == kind}
        home = next((pt for p, pt in zip(found, out, strict=True) if ids & {f.run_id for f in p.runs}),
                    out[0] if out else None)
        if home is not None:
            home.details.extend(sentence)
    # a run stopped by an error has no finding to count it under a cause: without this point
    # "What failed and why" left out the runs that failed most plainly of all
    if errored := [f for f in every if f.status == "failed"]:
        n = len(errored)
        out.append(Point(f"{n} of {len(every)} run{'s' if len(every) > 1 else ''} stopped with an "
                         "error and never ranked (each run's error is in its row).",
                         [f"failed: {C.listing([f.label for f in errored])}."]))
    return out


def _kind_details(kind: str, n_cause: int, runs: Sequence[tuple[RunFacts, list[Finding]]]) -> list[str]:
    """The detail under a cause's point: every run with the finding, and, when that is more
    runs than the point counts (the others have a more severe finding as their cause), how
    the two counts relate, so '2 runs barely learned' over '8 runs barely learned' reads right."""
    said = C.kind_sentence(kind, runs)
    if not said:
        return []
    n_all = len(_with(kind, runs))
    if n_all > n_cause:
        rest = n_all - n_cause
        said += (f" ({n_cause} of them have it as their main finding; the other {rest} "
                 f"{'is' if rest == 1 else 'are'} counted under a more severe one.)")
    return [said]


def _time(tables: tuple[Sequence[dict], Sequence[dict], Sequence[dict]], target: float | None,
          critical: CriticalBatchFit | str | None, noise_floor: float) -> list[Point]:
    to_target, gaps, _ = tables
    out = []
    details = C.to_target_sentences(to_target, target)
    reached = [r for r in to_target if r["reached"]]
    timed = [r for r in reached if r["wall_time"] is not None]  # not an imported log without times
    if details and timed:
        fast = min(timed, key=lambda r: r["wall_time"])
        slow = max(timed, key=lambda r: r["wall_time"])
        text = f"Batch {fast['batch_size']} reaches the target first: {fast['wall_time']:.3g} s"
        if slow is not fast:
            text += f", against {slow['wall_time']:.3g} s at batch {slow['batch_size']}"
        missing = [str(r["batch_size"]) for r in to_target if not r["reached"] and r["has_data"]]
        if missing:
            text += f"; batch {', '.join(missing)} never reach{'es' if len(missing) == 1 else ''} it"
        out.append(Point(text + ".", details))
    elif details and reached:
        out.append(Point(f"Batch {', '.join(str(r['batch_size']) for r in reached)} reach"
                         f"{'es' if len(reached) == 1 else ''} the target; the logs hold no wall "
                         "times to say which is first.", details))
    elif details:
        out.append(Point("No batch size reaches the target on every seed.", details))
    tested = [r["batch_size"] for r in to_target]
    if (said := C.critical_batch_sentence(critical, tested)) is not None:
        if isinstance(critical, CriticalBatchFit):
            text = (f"Up to a batch of about {critical.b_crit:.3g} (the critical batch size), a "
                    "larger batch cuts the steps to the target nearly in proportion; beyond it, "
                    "less and less")
            if tested and not min(tested) <= critical.b_crit <= max(tested):
                text += " (extrapolated beyond the batch sizes tested)"
        else:
            text = "No critical batch size can be fitted from these batch sizes"
        out.append(Point(text + ".", [said]))
    if (gap := C.gap_sentence(gaps, noise_floor)) is not None:
        trend = gap.split(" with batch size")[0].rsplit(") ", 1)[-1]
        out.append(Point(f"The gap between train and val acc {trend} with batch size.", [gap]))
    return out


def _lr(best_lr: Sequence[dict], fit: PowerLawFit | None, verdict: ExponentVerdict | None) -> list[Point]:
    rows = [r for r in best_lr if r["lr"] is not None]
    if len(rows) < 2:
        return []
    lrs = [r["lr"] for r in rows]
    first, last = rows[0], rows[-1]
    if len(set(lrs)) == 1:
        text = f"The best LR is {lrs[0]:g} at every batch size"
    else:
        text = (f"The best LR goes from {first['lr']:g} at batch {first['batch_size']} to "
                f"{last['lr']:g} at batch {last['batch_size']}")
    details = [f"batch {r['batch_size']}: best lr {r['lr']:g}, {r['schedule']}" + (
        f" ({m.best_name} {m.fmt(r[m.best_key])})" if r.get(m.best_key) is not None else "")
        for r in rows for m in (metric_of(r),)]
    if (said := C.lr_exponent_sentence(fit, verdict)) is not None:
        details.append(said)
        words = {n: w for n, _, w in SCALING_RULES}
        if verdict is not None and verdict.rule is not None:
            text += f": it follows {words[verdict.rule]}"
        elif verdict is not None and len(verdict.consistent) > 1:
            held = [words[n].split(" (")[0] for n in verdict.consistent]
            text += (f"; the data cannot tell apart {', '.join(held[:-1])} and {held[-1]} (more "
                     "batch sizes or a finer LR grid would)")
        elif verdict is not None:
            text += "; it follows none of the scaling rules (linear, square-root, none)"
    return [Point(text + ".", details)]


def _faster(pick: dict[str, Any], fast: dict[str, Any], best: dict[str, Any],
            groups: Sequence[dict[str, Any]]) -> str:
    """'Batch 16 reaches the target sooner (0.7 s against 2 s), at a best val acc within noise
    of the pick's (99.4% against 99.7%).'"""
    text = (f"Batch {fast['batch_size']} reaches the target sooner ({fast['wall_time']:.3g} s "
            f"against {pick['wall_time_to_target']:.3g} s)")
    other = next((g for g in groups if g["label"] == fast["wall_time_label"]), None)
    m = metric_of(pick)
    if other is None or other[m.mean] is None:
        return text + "."
    noise = best["noise"] if best["noise"] is not None else 0.0
    gap = m.behind(pick[m.best_key], other[m.mean])
    how = "within noise of the pick's" if gap <= noise else f"{m.worse} than the pick's"
    return (text + f", at a {m.best_name} {how} ({m.fmt(other[m.mean])} against "
            f"{m.fmt(pick[m.best_key])}).")


def _why(pick: dict[str, Any] | None, groups: dict[str, list[Point]],
         to_target: Sequence[dict], best: dict[str, Any] | None = None,
         configs: Sequence[dict[str, Any]] = ()) -> list[str]:
    """The failure that hit the most runs, how the pick's time compares, and the LR trend."""
    out = []
    if groups.get(FAILED):
        out.append(groups[FAILED][0].sentence)
    reached = [r for r in to_target if r["reached"]]
    timed = [r for r in reached if r["wall_time"] is not None]
    if pick is not None and timed and pick["reached"] and pick["wall_time_to_target"] is not None:
        fast = min(timed, key=lambda r: r["wall_time"])
        if fast["wall_time_label"] == pick["label"]:
            out.append(f"It is also the fastest to the target: {fast['wall_time']:.3g} s.")
        elif best is not None:
            out.append(_faster(pick, fast, best, configs))
    if groups.get(LR):
        out.append(groups[LR][0].sentence)
    return out[:MAX_WHY]


def write_answer(e: C.Evidence) -> Answer:
    """The answer from the same evidence as :func:`~batchlab.analysis.conclusions.write_conclusions`."""
    runs, target, groups, best, tables = e.runs, e.target, e.groups, e.best, e.tables
    facts = [f for f, _ in runs]
    overview = C.overview(e.experiment, facts)
    points = {WORKED: _worked(runs), FAILED: _failed(runs, overview),
              TIME: _time(tables, target, e.critical, e.noise_floor), LR: _lr(tables[2], e.lr_fit, e.lr_rule)}
    points = {q: ps for q, ps in points.items() if ps}
    details = overview[:1] + [s for s in (C.target_sentence(target, e.target_given),) if s]
    details += C.best_sentences(best, groups)
    if best is None:
        headline = (overview[1] if len(overview) > 1 else
                    "Nothing to pick yet: no configuration qualifies as best.")
        headline = headline[:1].upper() + headline[1:]
        details += [s for s in overview[1:] if s not in details]
        return Answer(headline, None, "", "", _why(None, points, tables[0]), details, points)
    pick = _pick(best)
    score = _score(pick, target)
    at_chance = [found for f, found in runs
                 if f.run_id in best["group"]["run_ids"] and cause(found) == "collapsed"]
    final = best["group"]["final_val_acc_mean"]
    ends = f" (final val acc {pct(final)})" if final is not None else ""
    if at_chance and all(any(never_rose(x) for x in found) for found in at_chance):
        # no peak to keep: at chance from the first evaluation, it learned nothing
        score += f" Its runs never rose above chance{ends}: there is no learned model to keep."
    elif at_chance:
        # ranked by its best val acc (an early-stopping checkpoint's), it lost it: say so
        score += (f" Its runs collapsed to chance after that peak{ends}: keep the best "
                  "checkpoint, or pick a configuration that did not collapse.")
    unfinished = sum(f.status in UNFINISHED for f in facts)
    # an interrupted or pending run may still overtake the pick: the headline says so
    so_far = (f" So far: {unfinished} of {len(facts)} runs have not finished, and the pick may "
              "change once they do." if unfinished else "")
    return Answer(f"Pick {pick['label']}.{so_far}", pick, score, _sure(best, groups),
                  _why(pick, points, tables[0], best, groups), details, points)
