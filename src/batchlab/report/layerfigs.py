"""The per-layer panel of the report: gradient norm and update ratio vs step, one line per
layer (log y), with the run's per-layer diagnosis beside it.

The runs shown are those with a per-layer or capacity finding, else the best run, at most
:data:`MOST_RUNS` (a sweep of 24 runs would otherwise add 24 figures for one question). Runs
recorded without ``train.watch`` have no ``layer/...`` series and are never shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from batchlab.analysis.layers import LAYER_KINDS, layer_order, layer_series
from batchlab.analysis.verdict import finding_text
from batchlab.report.figures import FigureFile, axes_title, log_axis, new_figure, place, save_figure
from batchlab.report.html import bullets, esc, figure

MOST_RUNS = 4
MOST_LABELLED = 10  # layers named in the legend; the others are drawn in grey
KINDS_SHOWN = (*LAYER_KINDS, "model_too_small")
PANELS = (("grad_norm", "gradient norm"), ("update_ratio", "update ratio |Δw| / |w|"))


def chosen_runs(runs: Sequence[Any], analysis: Any) -> list[tuple[Any, list[str]]]:
    """(run, its per-layer/capacity sentences) of the runs to show: those with such a finding,
    else the best run (the analysis's best configuration, else the first with layer series)."""
    findings = {r.run_id: r.findings for r in analysis.runs} if analysis is not None else {}
    watched = [r for r in runs if layer_series(r.series, "grad_norm")]
    out = []
    for r in watched:
        said = [finding_text(f.kind, f.message) for f in findings.get(r.run_id, [])
                if f.kind in KINDS_SHOWN]
        if said:
            out.append((r, said))
    if not out and watched:
        best = (analysis.best or {}).get("group", {}).get("run_ids", []) if analysis is not None else []
        pick = next((r for r in watched if r.run_id in best), watched[0])
        out.append((pick, ["no per-layer finding: gradients reach every layer, none vanishes or "
                           "explodes, and no layer has most of its units dead."]))
    return out[:MOST_RUNS]


def layer_figure(run: Any, folder: Path, name: str) -> FigureFile:
    """Two panels (gradient norm, update ratio) vs step, one line per layer in model order."""
    fig = new_figure(9.5, 3.4)
    axes = fig.subplots(1, 2)
    place(fig, right=2.2, top=0.45, wspace=0.3)
    order = layer_order(list(layer_series(run.series, "grad_norm")), run.record.summary)
    colors = {n: f"C{i % 10}" for i, n in enumerate(order[:MOST_LABELLED])}
    handles = []
    for ax, (signal, label) in zip(axes, PANELS, strict=True):
        by_layer = layer_series(run.series, signal)
        values = []
        for n in order:
            s = by_layer.get(n)
            if s is None:
                continue
            y = np.where(s.value > 0, s.value, np.nan)  # 0 (no gradient) cannot sit on a log axis
            line, = ax.plot(s.step, y, color=colors.get(n, "0.75"), lw=1.3, marker=".", ms=3,
                            label=n if n in colors else None)
            if signal == "grad_norm" and n in colors:
                handles.append(line)
            values.append(y[np.isfinite(y)])
        finite = np.concatenate(values) if values else np.zeros(0)
        if finite.size:
            log_axis(ax, "y", (float(finite.min()) / 1.5, float(finite.max()) * 1.5))
        ax.set_xlabel("step")
        axes_title(ax, label)
    if len(order) > MOST_LABELLED:
        handles.append(axes[0].plot([], [], color="0.75", label=f"{len(order) - MOST_LABELLED} more")[0])
    fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(1 - 2.1 / 9.5, 0.9), fontsize=8,
               frameon=False, title="layer (first to last)", title_fontsize=8)
    title = f"Per-layer signals of run {run.run_id[:10]}"
    caption = ("Measured at each evaluation, in the update after it; a layer without a gradient "
               "(0) has no point on the log axis.")
    return save_figure(fig, folder, name, title, caption)


def section(runs: Sequence[Any], analysis: Any, folder: Path,
            prefix: str = "") -> tuple[str, list[FigureFile]]:
    """The HTML of the per-layer section, each figure with its sentences beside it, and the
    figures (``<prefix>layers-1`` ...: a comparison's two experiments share one folder);
    ("", []) when no run recorded per-layer signals (the section is then left out)."""
    parts, figs = [], []
    for i, (run, said) in enumerate(chosen_runs(runs, analysis)):
        fig = layer_figure(run, folder, f"{prefix}layers-{i + 1}")
        figs.append(fig)
        what = " · ".join(x for x in (f"lr {run.lr:g}" if run.lr is not None else "",
                                      f"batch {run.batch_size}" if run.batch_size else "",
                                      f"seed {run.seed}" if run.seed is not None else "") if x)
        parts.append(f'<div class="layer-panel"><h3>run {esc(run.run_id[:10])} ({esc(what)})</h3>'
                     f"{figure(fig)}{bullets(said)}</div>")
    return "".join(parts), figs
