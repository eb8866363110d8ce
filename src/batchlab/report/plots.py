"""Drawing the curve figures: learning curves in four x views, the LR x batch small multiples,
and the LR schedules actually applied. Inputs are plot data (``plotdata.Group``), outputs are
figures; nothing here reads the store or computes a statistic.

Every line takes its colour (LR) and dash (batch size) from one ``StyleMap``; seeds appear as
a mean line with a +-1 std band.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter

from batchlab.report.figures import axes_title, legend_right, log_axis, new_figure, no_data, place
from batchlab.report.plotdata import Curve, Group, facet_title
from batchlab.report.series import VIEWS, stride_index
from batchlab.report.style import StyleMap, fmt_lr

VIEW_LABELS = {"epoch": "epochs", "step": "steps", "examples": "examples seen",
               "wall_time": "wall time (s)"}
METRIC_LABELS = {"train_loss": "train loss (per step)", "val_loss": "validation loss",
                 "val_acc": "validation accuracy", "train_eval_loss": "train loss (eval)",
                 "train_acc": "train accuracy (eval)", "lr": "learning rate"}
# A dot per evaluation while dots stay readable: few evaluations and few lines in the panel.
MARKER_POINTS, MARKER_LINES = 30, 12
BAND_ALPHA = 0.18
RAW_ALPHA = 0.25
BAND_POINTS = 400


def draw_curve(ax: Axes, curve: Curve, view: str, kw: dict[str, Any], *, lw: float = 1.5,
               alpha: float = 1.0, marker: str | None = None) -> bool:
    """Plot one curve against x ``view``, with its std band; False when it has no finite y.
    ``marker`` is drawn only on curves with at most MARKER_POINTS points."""
    x, y = curve.x[view], curve.y
    finite = np.isfinite(y) & np.isfinite(x)
    if not finite.any():
        return False
    use_marker = marker if marker and finite.sum() <= MARKER_POINTS else None
    ax.plot(x, y, lw=lw, alpha=alpha, marker=use_marker, markersize=3, **kw)
    if curve.std is not None and np.isfinite(curve.std).any():
        _band(ax, x, y, curve.std, kw["color"], BAND_ALPHA * alpha)
    return True


def _band(ax: Axes, x: np.ndarray, y: np.ndarray, std: np.ndarray, color: Any, alpha: float) -> None:
    """The mean +-1 std band as one polygon per finite stretch.

    Added without autoscaling: ``fill_between`` re-autoscales every shared axes of a grid on
    each call (quadratic in the number of cells); the mean line already sets the limits.
    """
    i = stride_index(x.size, BAND_POINTS)  # a band is smooth: fewer points draw the same
    x, lo, hi = x[i], (y - std)[i], (y + std)[i]
    ok = np.isfinite(x) & np.isfinite(lo) & np.isfinite(hi)
    polys = []
    for run in np.split(np.arange(x.size), np.flatnonzero(np.diff(ok.astype(int))) + 1):
        if ok[run[0]] and run.size > 1:
            xs = x[run]
            polys.append(np.column_stack([np.concatenate([xs, xs[::-1]]),
                                          np.concatenate([lo[run], hi[run][::-1]])]))
    if polys:
        ax.add_collection(PolyCollection(polys, facecolors=[color], alpha=alpha, linewidths=0),
                          autolim=False)


def _mark_divergence(ax: Axes, group: Group, curve: Curve | None, view: str, kw: dict[str, Any]) -> None:
    """An 'x' where a diverged group's line ends, so the stop reads as divergence, not as data."""
    if curve is None or not group.n_diverged:
        return
    finite = np.flatnonzero(np.isfinite(curve.y) & np.isfinite(curve.x[view]))
    if finite.size:
        i = finite[-1]
        ax.plot([curve.x[view][i]], [curve.y[i]], marker="x", markersize=7, mew=2,
                color=kw["color"], linestyle="none")


def _loss_limits(groups: Sequence[Group], names: Sequence[str]) -> tuple[float, float] | None:
    """Log-axis limits that keep a diverging loss from flattening every other curve: up to
    3x the largest starting loss, down to the smallest loss reached."""
    starts, lows = [], []
    for g in groups:
        for name in names:
            c = g.curves.get(name)
            if c is None:
                continue
            y = c.y[np.isfinite(c.y) & (c.y > 0)]
            if y.size:
                starts.append(y[0])
                lows.append(y.min())
    if not starts:
        return None
    return min(lows) / 1.5, max(starts) * 3


LEGEND_IN = 2.9  # inches of right margin that hold the legend


def _legend(fig: Figure, style: StyleMap, extra: Sequence[tuple[str, dict[str, Any]]] = ()) -> None:
    legend_right(fig, style.legend_handles(extra), LEGEND_IN)


def _regression(groups: Sequence[Group]) -> bool:
    """Whether the groups have a finite validation loss but never an accuracy (as
    ``plotdata.is_regression`` of their runs)."""
    def finite(name: str) -> bool:
        return any(name in g.curves and np.isfinite(g.curves[name].y).any() for g in groups)
    return finite("val_loss") and not finite("val_acc")


def learning_curves(groups: Sequence[Group], style: StyleMap, title: str) -> Figure:
    """Rows: train loss (light raw + smoothed), validation loss, validation accuracy (left
    out for a regression: no run has one, and the report's notes say so). Columns: the same
    curves against epochs, steps, examples seen and wall time, named under the last row."""
    rows: tuple[tuple[str, str], ...] = (("train_loss", "train loss"), ("val_loss", "validation loss"),
                                         ("val_acc", "validation accuracy"))
    if _regression(groups):
        rows = rows[:2]
    fig = new_figure(18, 10 * len(rows) / 3)
    place(fig, right=LEGEND_IN, wspace=0.22, hspace=0.15)
    axes = fig.subplots(len(rows), len(VIEWS), squeeze=False)
    limits = _loss_limits(groups, ["train_loss_smooth", "val_loss"])
    for r, (name, label) in enumerate(rows):
        for c, view in enumerate(VIEWS):
            ax = axes[r][c]
            drawn = False
            for g in groups:
                kw = style.of(g.lr, g.batch_size)
                if name == "train_loss":
                    if "train_loss" in g.curves:  # fainter as lines pile up, or they fog it
                        draw_curve(ax, g.curves["train_loss"], view, kw, lw=0.5,
                                   alpha=RAW_ALPHA if len(groups) <= 4 else RAW_ALPHA / 2)
                    smooth = g.curves.get("train_loss_smooth")
                    drawn |= smooth is not None and draw_curve(ax, smooth, view, kw, lw=1.4)
                    _mark_divergence(ax, g, smooth, view, kw)
                else:
                    curve = g.curves.get(name)
                    dots = "o" if len(groups) <= MARKER_LINES else None
                    drawn |= curve is not None and draw_curve(ax, curve, view, kw, lw=1.4, marker=dots)
                    _mark_divergence(ax, g, curve, view, kw)
            if r == len(rows) - 1:  # the only row with x labels: set even on an empty panel
                ax.set_xlabel(VIEW_LABELS[view])
            if not drawn:
                no_data(ax, f"no run recorded {label}")
                continue
            if name != "val_acc":
                log_axis(ax, limits=limits)
            ax.grid(alpha=0.3)
            if view == "examples":
                ax.xaxis.set_major_formatter(EngFormatter(sep=""))  # 1.5M, not 1.5 x 1e6
            if c == 0:
                ax.set_ylabel(label)
    fig.suptitle(title, fontsize=13)
    extra: list[tuple[str, dict[str, Any]]] = [("train loss, raw", {"lw": 0.8, "alpha": 0.4}),
                                               ("smoothed (running mean)", {"lw": 1.6})]
    if any(g.n > 1 for g in groups):
        extra.append(("band: ±1 std over seeds", {"lw": 6, "alpha": BAND_ALPHA}))
    if any(g.n_diverged for g in groups):
        extra.append(("diverged here", {"marker": "x", "linestyle": "none"}))
    _legend(fig, style, extra)
    return fig


def _grid_axes(fig: Figure, lrs: Sequence[float], batch_sizes: Sequence[int]) -> np.ndarray:
    # x shared per column (one batch size: same epochs), y shared by all cells to compare them
    return fig.subplots(len(lrs), len(batch_sizes), squeeze=False, sharex="col", sharey=True)


def small_multiples(groups: Sequence[Group], style: StyleMap, kind: str, title: str) -> Figure:
    """Rows = the spec's LR (largest on top), columns = batch size; each cell: train vs
    validation ``kind`` ('loss' or 'acc') against epochs, titled with the LR it applied.
    Shared axes, so cells compare at a glance."""
    lrs = sorted({g.spec_lr for g in groups if g.spec_lr is not None}, reverse=True)
    bss = sorted({g.batch_size for g in groups if g.batch_size is not None})
    train_name, val_name = ("train_eval_loss", "val_loss") if kind == "loss" else ("train_acc", "val_acc")
    if not lrs or not bss:
        fig = new_figure(6, 3)
        no_data(fig.subplots(), "no run has both a learning rate and a batch size")
        return fig
    fig = new_figure(min(3.0 * len(bss), 18) + LEGEND_IN + 0.8, min(2.3 * len(lrs), 24) + 1.4)
    place(fig, right=LEGEND_IN, top=0.8, wspace=0.08, hspace=0.45)
    axes = _grid_axes(fig, lrs, bss)
    cells = {(g.spec_lr, g.batch_size): g for g in groups}
    limits = _loss_limits(groups, [train_name, val_name]) if kind == "loss" else None
    for i, lr in enumerate(lrs):
        for j, b in enumerate(bss):
            ax = axes[i][j]
            g = cells.get((lr, b))
            applied = g.lr if g is not None and g.lr is not None else lr
            spec = f" (spec {fmt_lr(lr)})" if applied != lr else ""
            axes_title(ax, f"lr {fmt_lr(applied)}{spec} · batch {b}" + _cell_note(g), fontsize=9)
            ax.grid(alpha=0.3)
            kw = style.of(applied, b)
            drawn = False
            if g is not None:
                if kind == "loss" and "train_loss_smooth" in g.curves:
                    draw_curve(ax, g.curves["train_loss_smooth"], "epoch",
                               {**kw, "color": "0.6", "linestyle": "-"}, lw=0.8)
                for name, alpha in ((train_name, 0.45), (val_name, 1.0)):
                    if name in g.curves:
                        drawn |= draw_curve(ax, g.curves[name], "epoch", kw, lw=1.5, alpha=alpha,
                                            marker="o" if name == val_name else None)
            if not drawn:
                ax.text(0.5, 0.5, "no data: not run" if g is None else "no data: no evaluation",
                        ha="center", va="center", transform=ax.transAxes, fontsize=9, color="0.4")
            if kind == "loss":
                log_axis(ax, limits=limits)
            ax.label_outer()  # shared axes: tick labels on the outer cells only
            if i == len(lrs) - 1:
                ax.set_xlabel("epochs")
            if j == 0:
                ax.set_ylabel(METRIC_LABELS[val_name].split(" ", 1)[1] if kind == "acc" else "loss")
    fig.suptitle(title, fontsize=13)
    extra = [("validation", {"lw": 1.5}),
             ("train (eval mode)", {"lw": 1.5, "alpha": 0.45})]
    if kind == "loss":
        extra.append(("train per step, smoothed", {"lw": 0.8, "color": "0.6"}))
    _legend(fig, style, extra)
    return fig


def _cell_note(g: Group | None) -> str:
    if g is None:
        return ""
    notes = [f"{g.n} seeds"] if g.n > 1 else []
    if g.n_diverged:
        notes.append(f"{g.n_diverged} diverged" if g.n > 1 else "diverged")
    if g.n_pruned:  # why is in the runs table's findings
        notes.append(f"{g.n_pruned} pruned" if g.n > 1 else "pruned")
    return f"\n({', '.join(notes)})" if notes else ""


def schedules(facet_groups: Sequence[tuple[str, Sequence[Group]]], style: StyleMap, title: str) -> Figure:
    """The LR each update actually used (the stored ``lr`` metric), per facet row, against
    steps and against epochs (log scale when every LR is positive)."""
    fig = new_figure(15, 3.2 * max(1, len(facet_groups)) + 1.2)
    place(fig, right=LEGEND_IN, hspace=0.45, wspace=0.2)
    axes = fig.subplots(max(1, len(facet_groups)), 2, squeeze=False)
    for r, (facet, groups) in enumerate(facet_groups):
        for c, view in enumerate(("step", "epoch")):
            ax = axes[r][c]
            drawn = False
            for g in groups:
                curve = g.curves.get("lr")
                if curve is None:
                    continue
                drawn |= draw_curve(ax, curve, view, style.of(g.lr, g.batch_size), lw=1.4)
            if not drawn:
                no_data(ax, "no run recorded its learning rate")
                continue
            log_axis(ax)  # log when every LR is positive and they span a factor 3 or more
            ax.grid(alpha=0.3)
            ax.set_xlabel(VIEW_LABELS[view])
            ax.set_ylabel("learning rate")
            axes_title(ax, facet_title(facet))
    if not facet_groups:
        no_data(axes[0][0], "no runs")
        no_data(axes[0][1], "no runs")
    fig.suptitle(title, fontsize=13)
    _legend(fig, style)
    return fig

