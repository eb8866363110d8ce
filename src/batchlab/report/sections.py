"""Report sections that are not analysis tables: the overview, the runs table with each run's
findings, the probe listing, a section of figures, and notes on what was left out."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence

from batchlab.report.figures import FigureFile
from batchlab.report.html import Raw, bullets, esc, figure, table
from batchlab.report.plotdata import ProbePlot, RunData
from batchlab.results import run_row

PROBE_JSON_CHARS = 600  # a probe's result summary is cut here: the arrays are in its figure


def overview(experiment: str, runs: Sequence[RunData], target: float | None) -> str:
    """What was studied: run counts per status, data/model/optimizer, the grid, the target."""
    if not runs:
        return f'<p class="note">Experiment {esc(experiment)} has no runs, only probes.</p>'
    counts = Counter(r.status for r in runs)
    cfg = runs[0].record.config
    data, model, train = cfg.get("data", {}), cfg.get("model", {}), cfg.get("train", {})
    seeds = sorted({r.seed for r in runs if r.seed is not None})
    facts = [
        f"{len(runs)} run{'' if len(runs) == 1 else 's'}: "
        + ", ".join(f"{n} {s}" for s, n in counts.most_common()),
        f"data {data.get('name')}, model {model.get('name')}, optimizer {train.get('optimizer')}",
        f"batch sizes {sorted({r.batch_size for r in runs if r.batch_size is not None})}; "
        f"learning rates {sorted({r.lr for r in runs if r.lr is not None})}; "
        f"schedules {sorted({r.facet for r in runs})}; seeds {seeds}",
    ]
    if target is not None:
        facts.append(f"target validation accuracy {target:.4g}")
    return bullets(facts)


def runs_table(runs: Sequence[RunData], findings: dict[str, list[str]]) -> str:
    """One row per run: knobs, status, final and best validation accuracy, steps, time, and
    the analysis findings in words."""
    rows = []
    for r in runs:
        row = run_row(r.record)
        best = row.get("best_val_acc")
        rows.append([r.run_id[:10], row["batch_size"], row["lr"], row["schedule"], row["seed"],
                     row["status"], row.get("final_val_acc"),
                     best if best is not None and best >= 0 else None, row.get("steps"),
                     row.get("wall_time_s"), Raw(bullets(findings.get(r.run_id, []), "findings"))])
    return table(["run", "batch", "lr", "schedule", "seed", "status", "final val acc",
                  "best val acc", "steps", "time s", "findings"], rows, left=(0, 3, 5, 10))


def probes(plots: Sequence[ProbePlot], figures: Sequence[FigureFile]) -> str:
    """Each probe's kind and the gist of its result; then the figures of those with arrays."""
    if not plots:
        return ('<p class="note">No probes stored for this experiment (batchlab lr-find, '
                "max-batch, throughput and noise-scale store theirs here).</p>")
    rows = []
    for p in plots:
        text = json.dumps(p.summary, default=str, allow_nan=True)
        if len(text) > PROBE_JSON_CHARS:
            text = text[:PROBE_JSON_CHARS] + " …"
        arrays = ", ".join(p.ys) or "–"
        rows.append([p.id, p.kind, Raw(f"<pre>{esc(text)}</pre>"),
                     f"{arrays} vs {p.x_key or 'index'}" if p.ys else "–"])
    return table(["#", "kind", "result", "plotted"], rows, left=(1, 2, 3)) + figures_html(figures)


def figures_html(figures: Sequence[FigureFile]) -> str:
    return "".join(figure(f) for f in figures)


def notes(items: Sequence[str]) -> str:
    return bullets(items) if items else '<p class="note">Nothing was left out.</p>'


def subtitle(*names: str) -> str:
    return f"batchlab report of {' vs '.join(names)} · generated {time.strftime('%Y-%m-%d %H:%M')}"


def heading(text: str, body: str) -> str:
    """A sub-heading with its body (for sections made of parts)."""
    return f"<h3>{esc(text)}</h3>{body}" if body else ""
