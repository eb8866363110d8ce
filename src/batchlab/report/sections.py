"""Report sections that are not analysis tables: the overview, the runs table with each run's
verdict, the probe listing, a section of figures, and notes on what was left out."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from batchlab.analysis.verdict import RunVerdict
from batchlab.report.answer import label_cell, run_cell
from batchlab.report.figures import FigureFile
from batchlab.report.html import Raw, bullets, esc, figure, table
from batchlab.report.plotdata import RunData, extra_swept, is_regression
from batchlab.report.probedata import ProbeView
from batchlab.results import run_row, schedule_label

NOISE_SCALE_NOTE = (
    "How to read the gradient noise scale B_simple: it is the batch size at which the gradient's "
    "noise equals its signal. Below it, each doubling of the batch nearly halves the steps to a "
    "target at almost no extra cost in examples; above it, extra examples per step are mostly "
    "wasted. A batch near B_simple (the critical batch size, McCandlish et al. 2018) takes about "
    "twice the fewest steps and twice the fewest examples: a good default when time and compute "
    "both count. The interval is for the estimate over all the probe's steps; the trace is a "
    "moving average of the last steps, so its end can sit outside the interval when the noise "
    "scale changes during training (it usually grows as the loss falls).")


def overview(experiment: str, runs: Sequence[RunData], target: float | None) -> str:
    """What was studied: run counts per status, data/model/optimizer, the grid, the target."""
    if not runs:
        return f'<p class="note">Experiment {esc(experiment)} has no runs, only probes.</p>'
    counts = Counter(r.status for r in runs)
    cfg = runs[0].record.config
    data, model, train = cfg.get("data", {}), cfg.get("model", {}), cfg.get("train", {})
    seeds = sorted({r.seed for r in runs if r.seed is not None})
    spec_lrs = sorted({r.spec_lr for r in runs if r.spec_lr is not None})
    applied = sorted({r.lr for r in runs if r.lr is not None})
    lrs = f"learning rates {_fmt_list(spec_lrs)}"
    if applied != spec_lrs:
        lrs += f" in the spec, applied after the {train.get('scale_lr')} scaling rule: {_fmt_list(applied)}"
    facts = [
        f"{len(runs)} run{'' if len(runs) == 1 else 's'}: "
        + ", ".join(f"{n} {s}" for s, n in counts.most_common()),
        f"data {data.get('name')}, model {model.get('name')}, {_optimizer(train)}",
        f"batch sizes {sorted({r.batch_size for r in runs if r.batch_size is not None})}; {lrs}; "
        f"schedules {sorted({schedule_label(r.record.config.get('train', {})) for r in runs})}; "
        f"seeds {seeds}",
    ]
    other = swept_fields(runs)
    if other:
        facts.append("also swept: " + "; ".join(f"{k} {_fmt_list(v)}" for k, v in other.items()))
    if target is not None:
        facts.append(f"target validation accuracy {target:.4g}")
    return bullets(facts)


def _optimizer(train: dict[str, Any]) -> str:
    """The overview's optimizer: a function sweep's stored one is the spec default, not what
    its training function built, and a tracked run may record none."""
    if train.get("function"):
        return "optimizer chosen by the training function"
    return f"optimizer {train.get('optimizer') or 'not recorded'}"


def _fmt_list(values: Sequence[Any]) -> str:
    return "[" + ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values) + "]"


def swept_fields(runs: Sequence[RunData]) -> dict[str, list[Any]]:
    """Swept fields other than batch size, LR, seed and the schedule, with their values."""
    out: dict[str, list[Any]] = {}
    for r in runs:
        for key, value in r.record.point.items():
            if extra_swept(key):
                values = out.setdefault(key, [])
                if value not in values:
                    values.append(value)
    return out


def runs_table(runs: Sequence[RunData], verdicts: dict[str, RunVerdict]) -> str:
    """One row per run: knobs, status, final and best validation accuracy (final and lowest
    validation loss for a regression, which records no accuracy), steps, time, its diagnosis
    label and one sentence, with every finding and its numbers folded under it."""
    loss = is_regression(runs)
    final_key, best_key = ("final_val_loss", "best_val_loss") if loss else ("final_val_acc", "best_val_acc")
    rows = []
    for r in runs:
        row = run_row(r.record)
        best = row.get(best_key)
        if not loss and best is not None and best < 0:
            best = None  # the -1 placeholder of an accuracy not evaluated yet
        rows.append([r.run_id[:10], row["batch_size"], row["lr"], r.lr, row["schedule"], row["seed"],
                     row["status"], row.get(final_key), best, row.get("steps"),
                     row.get("wall_time_s"), Raw(label_cell(verdicts.get(r.run_id))),
                     Raw(run_cell(verdicts.get(r.run_id)))])
    names = ["final val loss", "lowest val loss"] if loss else ["final val acc", "best val acc"]
    return table(["run", "batch", "lr (spec)", "lr applied", "schedule", "seed", "status",
                  *names, "steps", "time s", "diagnosis", "why"], rows,
                 left=(0, 4, 6, 11, 12))


def probes(views: Sequence[ProbeView], figures: Sequence[FigureFile]) -> str:
    """One row per probe (the latest result per kind and settings): what it measured, with
    which settings, and its reading in one line; a note on earlier results not shown; then each
    probe's figure."""
    if not views:
        return ('<p class="note">No probes stored for this experiment (batchlab lr-find, '
                "max-batch, throughput and noise-scale store theirs here).</p>")
    rows = [[v.id, v.title, v.settings or "–", v.reading] for v in views]
    body = table(["#", "probe", "settings", "reading"], rows, left=(1, 2, 3))
    hidden = sorted(i for v in views for i in v.replaces)
    if hidden:
        body += (f'<p class="note">Earlier results of the same probes with the same settings are '
                 f"not shown: #{', #'.join(map(str, hidden))} (each replaced by the latest).</p>")
    if any(v.kind == "noise_scale" for v in views):
        body += f'<p class="note">{esc(NOISE_SCALE_NOTE)}</p>'
    return body + figures_html(figures)


def figures_html(figures: Sequence[FigureFile]) -> str:
    return "".join(figure(f) for f in figures)


def notes(items: Sequence[str]) -> str:
    return bullets(items) if items else '<p class="note">Nothing was left out.</p>'


def subtitle(*names: str) -> str:
    return f"batchlab report of {' vs '.join(names)} · generated {time.strftime('%Y-%m-%d %H:%M')}"


def heading(text: str, body: str) -> str:
    """A sub-heading with its body (for sections made of parts)."""
    return f"<h3>{esc(text)}</h3>{body}" if body else ""
