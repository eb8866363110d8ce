"""Drawing the summary figures: accuracy heatmaps over LR x batch size, cost to target vs
batch size (log-log, with the perfect-scaling line and the critical-batch fit), and probe
results. Inputs are plot data, outputs are figures; nothing here reads the store.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from batchlab.report.figures import axes_title, log_axis, new_figure, no_data, place
from batchlab.report.plotdata import TARGET_CLOCKS, Heatmap, TargetData, facet_title
from batchlab.report.probedata import ProbePlot
from batchlab.report.style import fmt_lr

HEATMAP_CMAP = "viridis"
# The colour scale spans at least this much accuracy (10 points), anchored at the best value,
# so a 2-point difference never takes the whole range of colours.
MIN_COLOR_SPAN = 0.10
# Scalars of a probe result drawn as a vertical line when they fall on its x axis.
MARK_WORDS = ("suggest", "knee", "recommended")
CLOCK_LABELS = {"steps": "steps to target", "examples": "examples seen to target",
                "wall_time": "wall time to target (s)"}
METRIC_TITLES = {"best_val_acc": "best validation accuracy",
                 "final_val_acc": "final validation accuracy",
                 "best_val_loss": "lowest validation loss",
                 "final_val_loss": "final validation loss"}


def _is_loss(h: Heatmap) -> bool:
    """Loss heatmaps (a regression): lower is better, so the colour map runs the other way."""
    return h.metric.endswith("_loss")


def _cell_text(h: Heatmap, i: int, j: int) -> str:
    """'0.953', '0.953±0.004' over seeds, 'diverged', or '—' for a cell with no run; with the
    LR applied under it when a scaling rule moved it from the row's."""
    mean, n, div = h.mean[i, j], h.n[i, j], h.n_diverged[i, j]
    lr = f"\nlr {fmt_lr(h.applied[i, j])}" if h.scaled and np.isfinite(h.applied[i, j]) else ""
    if not np.isfinite(mean):
        return ("diverged" if div else "—") + (lr if div else "")
    form = ".3g" if _is_loss(h) else ".3f"
    text = f"{mean:{form}}" + (f"\n±{h.std[i, j]:{form}}" if n > 1 else "")
    return text + (f"\n({div} div.)" if div else "") + lr


def color_limits(values: np.ndarray) -> tuple[float, float]:
    """Colour scale limits: the data's range, widened downwards to at least MIN_COLOR_SPAN
    (not below 0), so the colours say how large a difference is, not only its order."""
    vmin, vmax = float(values.min()), float(values.max())
    if vmax - vmin < MIN_COLOR_SPAN:
        vmin = max(0.0, vmax - MIN_COLOR_SPAN)
        vmax = max(vmax, vmin + MIN_COLOR_SPAN)
    return vmin, vmax


def _draw_heatmap(ax: Axes, h: Heatmap, vmin: float, vmax: float) -> object:
    loss = _is_loss(h)  # the best cells are the light ones either way
    image = ax.imshow(np.ma.masked_invalid(h.mean), cmap=HEATMAP_CMAP + ("_r" if loss else ""),
                      vmin=vmin, vmax=vmax, aspect="auto")
    ax.set_facecolor("0.85")  # grey where nothing finite: diverged or never run
    mid = (vmin + vmax) / 2
    for i in range(len(h.lrs)):
        for j in range(len(h.batch_sizes)):
            dark = not np.isfinite(h.mean[i, j]) or (h.mean[i, j] < mid if loss else h.mean[i, j] > mid)
            ax.text(j, i, _cell_text(h, i, j), ha="center", va="center", fontsize=8,
                    color="black" if dark else "white")
    ax.set_xticks(range(len(h.batch_sizes)), [str(b) for b in h.batch_sizes])
    ax.set_yticks(range(len(h.lrs)), [fmt_lr(v) for v in h.lrs])
    ax.set_xlabel("batch size")
    ax.set_ylabel("learning rate in the spec\n(applied LR in each cell)" if h.scaled else "learning rate")
    return image


def heatmaps(best: Sequence[Heatmap], final: Sequence[Heatmap], title: str) -> Figure:
    """Rows: one per facet (schedule); columns: best and final validation accuracy (or loss,
    for a regression). One colour scale for every panel, mean (± std over seeds) written in
    each cell; an accuracy scale spans at least MIN_COLOR_SPAN, a loss scale the data."""
    pairs = list(zip(best, final, strict=True))
    rows = max([len(b.lrs) for b, _ in pairs] or [1])
    fig = new_figure(14, 1.0 + max(1, len(pairs)) * (1.1 + 0.6 * rows))
    place(fig, right=1.4, top=0.7, wspace=0.25, hspace=0.5)
    axes = fig.subplots(max(1, len(pairs)), 2, squeeze=False)
    allv = np.concatenate([h.mean.ravel() for h in (*best, *final)] or [np.array([])])
    allv = allv[np.isfinite(allv)]
    loss = any(_is_loss(h) for h in best)
    what = "validation loss" if loss else "validation accuracy"
    if not allv.size:
        for ax in axes.ravel():
            no_data(ax, f"no run has a {what}")
        fig.suptitle(title, fontsize=13)
        return fig
    vmin, vmax = (float(allv.min()), float(allv.max())) if loss else color_limits(allv)
    image = None
    for r, pair in enumerate(pairs):
        for c, h in enumerate(pair):
            ax = axes[r][c]
            if not h.lrs or not h.batch_sizes:
                no_data(ax, "runs without a learning rate or batch size")
                continue
            image = _draw_heatmap(ax, h, vmin, vmax)
            axes_title(ax, f"{METRIC_TITLES[h.metric]} — {facet_title(h.facet)}")
    if image is not None:
        w, _ = fig.get_size_inches()
        cax = fig.add_axes((1 - 1.1 / w, 0.15, 0.18 / w, 0.7))  # in the right margin
        widened = not loss and allv.max() - allv.min() < MIN_COLOR_SPAN
        span = (f"colours span {vmin:.3g}–{vmax:.3g}" if loss else f"colours span {vmin:.3f}–{vmax:.3f}"
                + (f" (widened to {MIN_COLOR_SPAN:.2f})" if widened else ""))
        fig.colorbar(image, cax=cax, label=f"{what}\n{span}")
    fig.suptitle(title, fontsize=13)
    return fig


def _reference(ax: Axes, b: np.ndarray, y: np.ndarray, slope: float, label: str) -> None:
    """A dotted power-law line y ∝ B**slope through the smallest batch's point."""
    grid = np.geomspace(b.min(), b.max(), 50)
    ax.plot(grid, y[0] * (grid / b[0]) ** slope, color="0.45", linestyle=":", lw=1.5, label=label)


def to_target(data: TargetData, title: str) -> Figure:
    """Steps, examples and wall time to reach the target vs batch size, log-log. Perfect
    scaling (steps and time ∝ 1/B, examples constant) is drawn from the smallest batch; the
    critical-batch fit S = S_min(1 + B_crit/B), E = E_min(1 + B/B_crit) when there is one."""
    fig = new_figure(16, 4.8)
    place(fig, left=0.9, right=0.3, wspace=0.3)
    axes = fig.subplots(1, len(TARGET_CLOCKS), squeeze=False)[0]
    for ax, clock in zip(axes, TARGET_CLOCKS, strict=True):
        y, err = data.values.get(clock, np.array([])), data.errors.get(clock)
        ok = np.isfinite(y) & (y > 0) if y.size else np.array([], dtype=bool)
        if not ok.any():
            why = ("no target: no run has a validation accuracy" if data.target is None else
                   f"no configuration reached val acc {data.target:.3g}\non every seed without diverging")
            no_data(ax, why)
            continue
        b, yy = data.batch_sizes[ok], y[ok]
        yerr = err[ok] if err is not None else None
        ax.errorbar(b, yy, yerr=yerr, marker="o", color="C0", capsize=4, lw=1.8,
                    label="measured (fastest config per batch)")
        if b.size > 1:
            _reference(ax, b, yy, 0.0 if clock == "examples" else -1.0, "perfect scaling")
        if data.fit is not None and clock in ("steps", "examples"):
            s_min, e_min, b_crit = data.fit
            grid = np.geomspace(b.min() / 2, b.max() * 2, 100)
            fit = s_min * (1 + b_crit / grid) if clock == "steps" else e_min * (1 + grid / b_crit)
            form = "S_min(1 + B_crit/B)" if clock == "steps" else "E_min(1 + B/B_crit)"
            ax.plot(grid, fit, color="C3", lw=1.3, label=f"fit {form}")
            ax.axvline(b_crit, color="C3", lw=0.8, linestyle="--",
                       label=f"critical batch size B_crit ≈ {b_crit:.3g}")
        ax.set_xscale("log", base=2)
        ax.set_xticks(b, [f"{v:g}" for v in b])  # label the batch sizes tested, nothing else
        ax.xaxis.set_minor_locator(NullLocator())
        log_axis(ax)
        ax.set_xlabel("batch size")
        ax.set_ylabel(CLOCK_LABELS[clock])
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    target = f" (target val acc {data.target:.3g})" if data.target is not None else ""
    fig.suptitle(title + target, fontsize=13)
    return fig


def _log_axis_helps(values: np.ndarray) -> bool:
    """A log axis helps when the values are positive and span at least a factor 10."""
    v = values[np.isfinite(values)]
    return bool(v.size) and v.min() > 0 and v.max() / v.min() >= 10


def _clip_exploding(ax: Axes, loss: np.ndarray) -> None:
    """An LR range test ends with the loss exploding; cap the axis at twice the starting
    loss so the part that matters (the descent) is not flattened."""
    lo, top = float(loss.min()), float(loss.max())
    if loss[0] > 0:
        top = min(top, 2 * float(loss[0]))
    if top > lo:
        pad = 0.05 * (top - lo)
        ax.set_ylim(lo - pad, top + pad)


def probe(p: ProbePlot) -> Figure:
    """One panel per plotted array (up to 4) of a probe result against its x array (or its
    index); a vertical line at any scalar named like a suggestion, knee or recommendation."""
    names = list(p.ys)[:4]
    fig = new_figure(min(5.0 * max(1, len(names)), 18), 3.8)
    place(fig, left=0.9, wspace=0.35)
    axes = fig.subplots(1, max(1, len(names)), squeeze=False)[0]
    if not names:
        no_data(axes[0], f"probe '{p.kind}' stored no arrays to plot")
    marks = {k: v for k, v in p.summary.items() if any(w in k for w in MARK_WORDS)
             and isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)}
    for ax, name in zip(axes, names, strict=False):
        y = p.ys[name]
        x = p.x if p.x is not None else np.arange(y.size, dtype=float)
        ok = np.isfinite(x) & np.isfinite(y)  # connect the points a probe did measure
        ax.plot(x[ok], y[ok], marker="o" if ok.sum() <= 40 else None, markersize=3, lw=1.5)
        if p.x is not None and p.x_key not in ("steps", "step") and _log_axis_helps(x):
            log_axis(ax, "x")
        if "loss" in name and ok.any():
            _clip_exploding(ax, y[ok])
        elif _log_axis_helps(y):
            log_axis(ax)
        for k, v in marks.items():
            if x[ok].size and x[ok].min() <= v <= x[ok].max():  # a mark on this x axis
                ax.axvline(v, color="C3", linestyle="--", lw=1, label=f"{k} = {v:.3g}")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        ax.set_xlabel(p.x_key or "index")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    fig.suptitle(f"probe {p.kind} (#{p.id})", fontsize=12)
    return fig
