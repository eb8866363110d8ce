"""Build every figure of one experiment: plot data -> drawing -> PNG file (and bytes).

A figure that has nothing to show is drawn with a "no data: <why>" panel, or left out with a
note saying why; it is never blank.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from batchlab.report import plots, summaryplots
from batchlab.report.errors import ReportError
from batchlab.report.figures import FigureFile, save_figure
from batchlab.report.plotdata import (
    Group,
    RunData,
    facet_title,
    facets,
    group_runs,
    heatmaps,
    is_regression,
    load_runs,
    slug,
    target_data,
)
from batchlab.report.probedata import ProbeView
from batchlab.report.probefigs import probe_figure
from batchlab.report.style import StyleMap
from batchlab.store import Store

# Report sections that hold figures, in page order: (key, title).
FIGURE_SECTIONS = (
    ("curves", "Learning curves"),
    ("grid", "Train vs validation, per LR and batch size"),
    ("heatmaps", "Validation accuracy (or loss) over LR × batch size"),
    ("target", "Time to target vs batch size"),
    ("schedules", "Learning-rate schedules applied"),
    ("probes", "Probes"),
)
ENCODING = ("Colour = the learning rate applied (after any scaling rule; the legend names the "
            "spec's LR where it differs), line style = batch size.")


@dataclass
class Built:
    """The figures of one experiment by section key, plus notes on what was left out."""

    experiment: str
    figures: dict[str, list[FigureFile]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def all(self) -> list[FigureFile]:
        return [f for key, _ in FIGURE_SECTIONS for f in self.figures.get(key, [])]


def style_for(runs: Sequence[RunData]) -> StyleMap:
    """The style map of these runs (pass the union of two experiments for a comparison)."""
    return StyleMap.build([r.lr for r in runs], [r.batch_size for r in runs],
                          [r.spec_lr for r in runs])


def build_figures(experiment: str, runs: Sequence[RunData], probes: Sequence[ProbeView],
                  analysis: Any, style: StyleMap, folder: Path, prefix: str = "") -> Built:
    """Draw and save every figure of ``experiment`` into ``folder`` (names start ``prefix``).

    ``analysis``: its ``ExperimentAnalysis`` (for time to target), or None.
    """
    built = Built(experiment)

    def add(section: str, name: str, title: str, caption: str, fig: Figure) -> None:
        built.figures.setdefault(section, []).append(
            save_figure(fig, folder, f"{prefix}{name}", title, caption))

    groups = group_runs(runs)
    by_facet: list[tuple[str, list[Group]]] = [
        (f, [g for g in groups if g.facet == f]) for f in facets(runs)]
    names = _unique_slugs([f for f, _ in by_facet])
    seeds = any(g.n > 1 for g in groups)
    spread = " Lines are means over seeds, bands ±1 std." if seeds else ""
    # a regression records no accuracy: its panels would be empty, so they are left out
    accuracy = not is_regression(runs)
    if not accuracy:
        built.notes.append("No run recorded a validation accuracy (a regression): the accuracy "
                           "grids and the time to an accuracy target are left out; the heatmaps "
                           "show the validation loss.")
    for (facet, gs), s in zip(by_facet, names, strict=True):
        where = f" — {facet_title(facet)}"
        add("curves", f"curves-{s}", f"Learning curves{where}",
            f"{ENCODING} Train loss per step: light raw line and its running mean (over 2.5% of the run); "
            f"validation per evaluation. Four x axes: epochs, steps, examples seen, wall time.{spread}",
            plots.learning_curves(gs, style, f"{experiment}{where}"))
        for kind, what in (("loss", "loss"), ("acc", "accuracy"))[:2 if accuracy else 1]:
            add("grid", f"grid-{kind}-{s}", f"Train vs validation {what}{where}",
                "Rows: learning rate, columns: batch size; y shared by all cells, x by each "
                "column. Validation in full colour (a dot per evaluation when there are few), "
                f"train (eval mode, the same subset each time) pale.{spread}",
                plots.small_multiples(gs, style, kind, f"{experiment}: train vs validation {what}{where}"))
    if not runs:
        built.notes.append("No runs: learning curves, grids, heatmaps and schedules are left out.")
    elif accuracy:
        add("heatmaps", "heatmaps", "Best and final validation accuracy",
            "Per cell: the mean over seeds (± std when there are several). Rows are the LRs "
            "of the spec; under a scaling rule each cell also names the LR it applied. The "
            "colour scale spans at least 10 accuracy points down from the best, so a small "
            "difference looks small; the colour bar gives its span. Final accuracy of a "
            "diverged run is undefined: such cells say so; grey cells were not run.",
            summaryplots.heatmaps(heatmaps(runs, "best_val_acc"), heatmaps(runs, "final_val_acc"),
                                  experiment))
    else:
        add("heatmaps", "heatmaps", "Lowest and final validation loss",
            "Per cell: the mean over seeds (± std when there are several). Rows are the LRs "
            "of the spec; under a scaling rule each cell also names the LR it applied. Light "
            "cells have the lowest loss; the colour bar gives the span. Final loss of a "
            "diverged run is undefined: such cells say so; grey cells were not run.",
            summaryplots.heatmaps(heatmaps(runs, "best_val_loss"), heatmaps(runs, "final_val_loss"),
                                  experiment))
    if runs:
        add("schedules", "schedules", "Learning rate per update",
            f"{ENCODING} The LR each update actually used (the stored lr metric, after the "
            "scaling rule, warm-up and decay).",
            plots.schedules(by_facet, style, f"{experiment}: learning-rate schedules"))
    if analysis is not None and accuracy:
        add("target", "to-target", "Cost to reach the target vs batch size",
            "Per batch size, the fastest configuration that reached the target on every seed "
            "without diverging (mean over seeds, error bars ±1 std). Dotted: perfect scaling from "
            "the smallest batch (steps and time ∝ 1/B, examples constant). Red: the critical-batch "
            "fit S = S_min(1 + B_crit/B), E = E_min(1 + B/B_crit) when the data bound it, and "
            "B_crit itself (dashed).",
            summaryplots.to_target(target_data(analysis), f"{experiment}: cost to target"))
    elif analysis is None:
        built.notes.append("Time to target left out: no analysis of this experiment.")
    for p in probes:
        fig = probe_figure(p)
        if fig is not None:
            add("probes", f"probe-{p.id}", f"{p.title} (probe #{p.id})", p.reading, fig)
    return built


def _unique_slugs(labels: Sequence[str]) -> list[str]:
    out: list[str] = []
    for label in labels:
        s = slug(label)
        out.append(s if s not in out else f"{s}-{len(out) + 1}")
    return out


def experiment_figure(store: Store, experiment: str, what: str = "curves",
                      facet: str | None = None) -> Figure:
    """One figure of a stored experiment (``SweepResult.plot``): ``what`` = "curves" (the
    learning curves of one ``facet``, default the first: what else the sweep varied, e.g. the
    schedule) or "heatmaps" (best and final validation accuracy, or loss for a regression,
    over LR x batch size). ReportError naming the choices when one is unknown."""
    runs = load_runs(store, experiment)
    if not runs:
        raise ReportError(f"experiment '{experiment}' has no runs to plot yet.")
    style = style_for(runs)
    if what == "heatmaps":
        best, final = ("best_val_loss", "final_val_loss") if is_regression(runs) else (
            "best_val_acc", "final_val_acc")
        return summaryplots.heatmaps(heatmaps(runs, best), heatmaps(runs, final), experiment)
    names = facets(runs)
    if what != "curves" or (facet is not None and facet not in names):
        raise ReportError(f"plot(what={what!r}, facet={facet!r}): what is 'curves' or "
                          f"'heatmaps', and facet one of {names}.")
    chosen = facet or names[0]
    groups = [g for g in group_runs(runs) if g.facet == chosen]
    return plots.learning_curves(groups, style, f"{experiment} — {facet_title(chosen)}")
