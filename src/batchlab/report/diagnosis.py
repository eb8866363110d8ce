"""The diagnosis part of a report, in words and tables, from an ``ExperimentAnalysis``.

Pure formatting: every number comes from ``batchlab.analysis``; this module only lays it out
(best configuration with its seed spread and the within-noise warning, time to
target, best LR per batch size with the fitted exponent, critical batch, generalisation gap,
and each run's verdict; the conclusions in words lead the report from ``report.answer``).
The tables show the metric the configurations were ranked by (``batchlab.analysis.metric``):
validation accuracy, or validation loss for an experiment without accuracies (a regression).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from batchlab.analysis.conclusions import lr_exponent_sentence
from batchlab.analysis.metric import ACCURACY, Metric, metric_of
from batchlab.analysis.scaling import SCALING_RULES
from batchlab.analysis.verdict import RunVerdict, run_verdict
from batchlab.report.html import esc, fmt, table


def _pm(mean: Any, std: Any) -> str:
    """'0.953 ± 0.004', or just the mean without a spread."""
    if mean is None:
        return "–"
    return fmt(mean) + (f" ± {fmt(std, 2)}" if std is not None else "")


def _metric(rows: Sequence[dict[str, Any]]) -> Metric:
    """The metric per-batch rows were ranked by (one for all the rows of an experiment)."""
    return metric_of(rows[0]) if rows else ACCURACY


def _difference(m: Metric, difference: float, noise: float) -> str:
    # accuracy differences stay raw fractions (as they always read here); a loss's are
    # relative to the best's loss, so a bare number would read as an absolute loss
    if m is ACCURACY:
        return f"Difference {fmt(difference, 3)} vs noise {fmt(noise, 3)}"
    return f"Difference {m.lead(difference)} vs noise {m.diff(noise)}"


def best_config(analysis: Any) -> str:
    """The best configuration and the runner-up with their spread over seeds; a warning when
    they differ by less than the seed noise."""
    best = analysis.best
    if not best:
        return '<p class="note">No configuration qualifies as best (no run with a validation ' \
               "accuracy, or a validation loss when no run records an accuracy, whose " \
               "configuration has no diverged or pruned run).</p>"
    m = metric_of(best["group"])
    rows = []
    for role, g in (("best", best["group"]), ("runner-up", best.get("runner_up"))):
        if g:
            rows.append([role, g["label"], f"{g['n']}/{g['n_runs']}", _pm(g[m.mean], g[m.std]),
                         _pm(g[m.final_mean], g[f"{m.final_key}_std"]), g["n_diverged"]])
    out = table(["", "configuration", "seeds with data", f"{m.best_name} (mean ± std)",
                 f"final {m.name}", "diverged"], rows, left=(0, 1))
    if best.get("difference") is not None:
        source = "std over seeds" if best.get("noise_source") == "seeds" else "noise threshold"
        line = f"{_difference(m, best['difference'], best['noise'])} ({source})."
        if best.get("within_noise"):
            out += (f'<p class="warn"><b>Within noise:</b> {esc(line)} The best and the runner-up '
                    "cannot be told apart with these seeds; treat them as equivalent or run more "
                    "seeds (sweep.repeats).</p>")
        else:
            out += f'<p class="note">{esc(line)}</p>'
    return out


def _fastest(row: dict[str, Any]) -> str:
    """The configuration cell: the fastest in steps (epochs and examples agree at one batch
    size) and, when another one is fastest in wall time, that one too: each clock of the row
    is the minimum over the batch size's configurations on its own."""
    # an imported log without a batch or training-set size has epochs alone to go by
    steps = row.get("steps_label") or row.get("epochs_label") or row.get("examples_label")
    wall = row.get("wall_time_label")
    if not steps:
        return "not reached"
    return steps if wall in (None, steps) else f"{steps} (wall time: {wall})"


def to_target(analysis: Any) -> str:
    rows = [[r["batch_size"], r.get("steps"), r.get("epochs"), r.get("examples"), r.get("wall_time"),
             _fastest(r)] for r in analysis.to_target_by_batch]
    if not rows:
        return '<p class="note">No batch size to compare.</p>'
    if analysis.target is None:  # a table of "not reached" rows would say nothing (a regression)
        return ('<p class="note">No target: no run has a validation accuracy, and time to '
                "target is measured against one; 'What to pick' compares the runs by "
                "validation loss.</p>")
    head = f"Target: validation accuracy {fmt(analysis.target)}. "
    return (f'<p class="note">{esc(head)}Per batch size the fastest configuration whose every '
            "seed reached the target (means over seeds); each clock's fastest on its own, so "
            "the wall time's may be another configuration, named beside.</p>"
            + table(["batch", "steps", "epochs", "examples", "wall time s", "configuration"],
                    rows, left=(5,)))


def best_lr(analysis: Any) -> str:
    """Best LR per batch size, and the fitted exponent compared with the scaling rules."""
    m = _metric(analysis.best_lr_by_batch)
    rows = [[r["batch_size"], r.get("lr"), r.get("effective_lr"), r.get("schedule"),
             r.get(m.best_key), r.get("n_lrs")] for r in analysis.best_lr_by_batch]
    out = table(["batch", "best lr", "effective lr", "schedule", m.best_name, "LRs tried"],
                rows, left=(3,)) if rows else ""
    fit = analysis.lr_exponent
    if fit is None:
        return out + '<p class="note">Best LR ∝ B^α: not fitted (needs a best LR at 2 or more ' \
                     "batch sizes).</p>"
    verdict = getattr(analysis, "lr_rule", None)
    inside = set(verdict.consistent) if verdict is not None else {n for n, _, _ in SCALING_RULES}
    known = verdict is not None and math.isfinite(verdict.half_width)
    half = f" ± {verdict.half_width:.2f}" if known else ""
    rules = table(["", "fitted", *(words for _, _, words in SCALING_RULES)],
                  [["α", f"{fit.alpha:.2f}{half}", *(f"{a:.1f}" for _, a, _ in SCALING_RULES)],
                   ["fitted − rule", None, *(f"{fit.alpha - a:+.2f}" for _, a, _ in SCALING_RULES)],
                   ["within the 95% interval", None, *("yes" if n in inside else "no"
                                                        for n, _, _ in SCALING_RULES)]], left=(0,))
    # the same sentence as the conclusions: a rule is named only when the interval excludes the others
    sentence = esc(lr_exponent_sentence(fit, verdict))
    return out + f"<p>Fitted <b>best LR ∝ B<sup>α</sup></b>: {sentence}</p>" + rules


def critical_batch(analysis: Any) -> str:
    fit = analysis.critical_batch
    if fit is None:
        return ('<p class="note">No critical-batch fit: it needs steps to target at 3 or more '
                "batch sizes that bound B_crit (the findings above say why).</p>")
    return ("<p>Fit of S(B) = S<sub>min</sub>(1 + B<sub>crit</sub>/B) to steps to target "
            "(McCandlish et al. 2018): below B_crit doubling the batch nearly halves the steps, "
            "above it extra examples per step buy little.</p>"
            + table(["B_crit", "S_min (steps)", "E_min (examples)", "rmse of log S", "points"],
                    [[fit.b_crit, fit.s_min, fit.e_min, fit.rmse, fit.n]], left=()))


def gaps(analysis: Any) -> str:
    """Per batch size, the best configuration's final train and val accuracy and their gap;
    without accuracies its final train (eval mode) and val loss."""
    if _metric(analysis.gap_by_batch) is not ACCURACY:
        rows = [[r["batch_size"], r.get("label") or "–", r.get("train_loss"), r.get("val_loss")]
                for r in analysis.gap_by_batch]
        return table(["batch", "best configuration", "final train loss (eval)", "final val loss"],
                     rows, left=(1,)) if rows else ""
    rows = [[r["batch_size"], r.get("label") or "–", r.get("train_acc"), r.get("val_acc"),
             _pm(r.get("gap"), r.get("gap_std"))] for r in analysis.gap_by_batch]
    if not rows:
        return ""
    return table(["batch", "best configuration", "final train acc", "final val acc",
                  "gap (train − val)"], rows, left=(1,))


def run_verdicts(analysis: Any) -> dict[str, RunVerdict]:
    """Run id -> its verdict: one label, one sentence and the evidence (every finding with its
    numbers), for the runs table."""
    return {r.run_id: r.verdict or run_verdict(r.findings, r.status) for r in analysis.runs}


def diagnosis_parts(analysis: Any) -> Sequence[tuple[str, str]]:
    """(heading, HTML) parts of the diagnosis section, in reading order."""
    return (
        ("Best configuration", best_config(analysis)),
        ("Time to target per batch size", to_target(analysis)),
        ("Best learning rate per batch size", best_lr(analysis)),
        ("Critical batch size", critical_batch(analysis)),
        ("Generalisation gap per batch size", gaps(analysis)),
    )
