"""JSON payloads of the dashboard and of the report's interactive charts: pure functions from
the store (or from runs the report already loaded) to plain JSON data, built from the readers
the report uses (``plotdata``, ``analysis``, ``diagnosis``, ``probedata``, ``style``).

Nothing here draws or formats HTML: the page builds its DOM from these values with
``textContent``, so a name or an error text from the store is never markup. Every number goes
through ``json_safe`` (NaN and inf become null: strict JSON has neither).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from batchlab.jsonsafe import json_safe
from batchlab.report.series import MAX_POINTS, envelope_index
from batchlab.results import applied_lr, run_row
from batchlab.store import RunRecord, Series, Store

# Line width of the interactive charts in pixels: report/style.py's dashes are in units of
# the line width (matplotlib's convention), so they are scaled by it for the browser.
LINE_PX = 1.6
CLOCKS = ("epoch", "step", "examples", "wall_time")


def _spec_lr(record: RunRecord) -> float | None:
    lr = record.config.get("train", {}).get("lr")
    return float(lr) if isinstance(lr, int | float) and not isinstance(lr, bool) else None


def _batch(record: RunRecord) -> int | None:
    b = record.config.get("train", {}).get("batch_size")
    return int(b) if isinstance(b, int) and not isinstance(b, bool) else None


def _dash(linestyle: Any) -> list[float]:
    """A matplotlib line style of ``report/style.py`` as a canvas dash array in pixels."""
    if isinstance(linestyle, tuple):
        return [round(v * LINE_PX, 2) for v in linestyle[1]]
    return []  # solid


def style(records: Sequence[RunRecord]) -> dict[str, Any]:
    """The report's mapping (colour = LR applied, line style = batch size) for these runs, as
    the page uses it: a colour and a dash per run, and the compact legend entries."""
    from matplotlib.colors import to_hex  # the style map needs matplotlib anyway

    from batchlab.report.style import StyleMap

    lrs = [applied_lr(r) for r in records]
    smap = StyleMap.build(lrs, [_batch(r) for r in records], [_spec_lr(r) for r in records])
    return {
        "runs": {r.id: {"color": to_hex(smap.color(lr)), "dash": _dash(smap.linestyle(_batch(r)))}
                 for r, lr in zip(records, lrs, strict=True)},
        "lrs": [{"label": smap.lr_label(lr), "color": to_hex(smap.color(lr))} for lr in smap.lrs],
        "batches": [{"label": f"batch {b}", "dash": _dash(smap.linestyle(b))}
                    for b in smap.batch_sizes],
    }


def experiments(store: Store) -> list[dict[str, Any]]:
    """Every experiment: name, created/updated times and run counts by status."""
    return [{"name": e.name, "created": e.created, "updated": e.updated, "counts": e.counts}
            for e in store.experiments()]


def reason(record: RunRecord) -> str | None:
    """Why a run ended as it did, when the store says: its error text (a failed run's error,
    a pruned run's reason for pruning)."""
    return record.error or None


def run_label(record: RunRecord) -> str:
    """'lr 0.1 · batch 16 · seed 0' (the legend text of a run's line)."""
    train = record.config.get("train", {})
    lr = applied_lr(record)
    parts = [f"lr {lr:g}" if lr is not None else "lr ?", f"batch {train.get('batch_size', '?')}"]
    if train.get("seed") is not None:
        parts.append(f"seed {train['seed']}")
    return " · ".join(parts)


def runs(records: Sequence[RunRecord]) -> list[dict[str, Any]]:
    """One row per run (``results.run_row``: status, knobs, final/best metrics) plus its
    progress, attempts (a new attempt may have replaced rows a live view holds), the LR
    applied, a legend label and the reason it ended, if stored."""
    return [json_safe({**run_row(r), "lr_applied": applied_lr(r), "label": run_label(r),
                       "progress_step": r.progress_step, "total_steps": r.total_steps,
                       "attempts": r.attempts, "reason": reason(r)}) for r in records]


def column(values: np.ndarray, digits: int | None = None) -> list[Any]:
    """One array as a JSON list: integers as they are, floats rounded to ``digits``
    significant digits when given, NaN and inf as None (strict JSON has neither). Vectorised
    where it can be: a long sweep's page holds millions of values."""
    if values.dtype.kind in "iub":
        return values.tolist()
    values = values.astype(float)
    out = values.tolist() if digits is None else [float(f"{v:.{digits}g}") for v in values.tolist()]
    for i in np.flatnonzero(~np.isfinite(values)):
        out[i] = None
    return out


def series(s: Series, index: np.ndarray | None = None, digits: int | None = None
           ) -> dict[str, list[Any]]:
    """A stored series as columns (value and the four clocks), optionally at ``index`` and
    rounded to ``digits`` significant digits (a smaller page; a chart cannot show more)."""
    cols = {"value": s.value, "epoch": s.epoch, "step": s.step, "examples": s.examples,
            "wall_time": s.wall_time}
    return {k: column(v if index is None else v[index], digits) for k, v in cols.items()}


def curves(store: Store, records: Iterable[RunRecord], since: Mapping[str, int] | None = None,
           max_points: int = MAX_POINTS) -> dict[str, dict[str, Any]]:
    """Run id -> metric name -> the rows from step ``since[run id]`` on (all rows of a run it
    does not name): what a live chart appends since it last asked. The step itself is sent
    again: an evaluation at the last step seen can land in the store after that step's
    training row (the page skips the rows it has). Each line is thinned to ``max_points``
    as the report thins it, so opening a long sweep's history stays quick; rows that land
    between two polls are far fewer and come as they are."""
    since = since or {}
    return thinned_curves(((r.id, store.metrics(r.id, after=since[r.id] - 1 if r.id in since else None))
                           for r in records), max_points)


def thinned_curves(run_series: Iterable[tuple[str, Mapping[str, Series]]],
                   max_points: int) -> dict[str, Any]:
    """Run id -> metric name -> columns of each series, thinned to ``max_points`` (the
    report's ``envelope_index``: the min/max envelope keeps spikes) with 6 significant
    digits, so a page of long runs stays small."""
    return {rid: {name: series(s, envelope_index(s.value, max_points), 6)
                  for name, s in ms.items() if s.step.size}
            for rid, ms in run_series}


def summary(store: Store, experiment: str, target: float | None = None) -> dict[str, Any]:
    """What the static report shows beside the curves, from the same functions: heatmaps,
    time to target, probe results, the answer (``analysis.answer``: what to pick, why, the
    findings by question) and each run's verdict (label, sentence, evidence) and findings.
    An experiment with no runs yet gives empty parts."""
    from batchlab.analysis import analyze_runs
    from batchlab.report.plotdata import load_runs
    from batchlab.report.probedata import probe_views

    loaded = load_runs(store, experiment)
    analysis = analyze_runs([(r.record, r.series) for r in loaded], experiment, target) if loaded else None
    return analysis_summary(loaded, analysis, probe_views(store, experiment))


def analysis_summary(loaded: Sequence[Any], analysis: Any, probes: Sequence[Any]) -> dict[str, Any]:
    """``summary`` of runs (``plotdata.RunData``), their ``ExperimentAnalysis`` (or None) and
    probe views that a caller already has (the report reuses what it loaded)."""
    from batchlab.analysis.verdict import finding_text
    from batchlab.report.layerfigs import KINDS_SHOWN
    from batchlab.report.plotdata import heatmaps, is_regression, target_data

    out: dict[str, Any] = {"heatmaps": [], "target": None, "probes": [], "answer": None,
                           "verdicts": {}, "findings": {}, "best": None,
                           "layer_kinds": list(KINDS_SHOWN)}  # the dashboard's per-layer panel
    out["probes"] = [{"id": p.id, "title": p.title, "settings": p.settings, "reading": p.reading}
                     for p in probes]
    if loaded:
        # as the report: a regression's cells are its lowest and final validation loss
        metrics = ("best_val_loss", "final_val_loss") if is_regression(loaded) else (
            "best_val_acc", "final_val_acc")
        out["heatmaps"] = [json_safe(h) for metric in metrics for h in heatmaps(loaded, metric)]
    if analysis is None:
        return out
    t = target_data(analysis)
    out["target"] = json_safe({"target": t.target, "batch_sizes": t.batch_sizes, "values": t.values,
                               "fit": t.fit, "rows": analysis.to_target_by_batch})
    out["answer"] = json_safe(analysis.answer)
    out["verdicts"] = json_safe({r.run_id: r.verdict for r in analysis.runs})
    out["findings"] = {r.run_id: [{"text": finding_text(f.kind, f.message), "kind": f.kind,
                                   "step": f.step, "epoch": f.epoch} for f in r.findings]
                       for r in analysis.runs}
    out["findings"] = json_safe(out["findings"])
    if analysis.best:
        out["best"] = json_safe({"label": analysis.best["group"]["label"],
                                 "within_noise": analysis.best.get("within_noise")})
    return out
