"""One figure per probe kind, drawn from the stored result (a ``ProbeView``), with labelled
axes and the reading in its title; the same figure the probe's command writes beside the store.

A result whose shape a kind's drawing does not know (older or hand-written) falls back to the
generic figure of its numeric arrays (``summaryplots.probe``); nothing here reads the store.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullLocator

from batchlab.report import summaryplots
from batchlab.report.errors import ReportError
from batchlab.report.figures import axes_title, log_axis, new_figure, place
from batchlab.report.probedata import ProbeView, fmt_bytes, num, view
from batchlab.store import ProbeRecord

BATCH_COLORS = ("C0", "C1", "C2", "C4", "C5", "C6", "C8", "C9")
LEGEND = {"fontsize": 8, "framealpha": 0.9}


def _finite(values: Sequence[Any]) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=float)


def _batch_axis(ax: Axes, sizes: Sequence[float]) -> None:
    """Log-2 batch-size axis labelled with the sizes tried, skipping any too close to the one
    labelled before it (a binary search tries 80, 84, 86, ...), always the largest."""
    ticks = sorted({float(b) for b in sizes if b > 0})
    ax.set_xscale("log", base=2)
    if not ticks:
        return
    gap = max(math.log2(ticks[-1] / ticks[0]) / 10, 0.3)
    kept = [ticks[0]]
    for t in ticks[1:]:
        if math.log2(t / kept[-1]) >= gap:
            kept.append(t)
    if kept[-1] != ticks[-1]:
        kept[-1] = ticks[-1]
    ax.set_xticks(kept, [f"{b:g}" for b in kept])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("batch size")


def _title(fig: Figure, v: ProbeView) -> None:
    """The probe's title, with its store id when it has one (``.plot()`` of a fresh result has not)."""
    fig.suptitle(f"{v.title} (probe #{v.id})" if v.id else v.title, fontsize=12)


# --------------------------------------------------------------------------- lr_range
def _lr_range(v: ProbeView) -> Figure:
    r = v.result
    per = r["per_batch"]
    many = len(per) > 1 and sum(b.get("suggested_lr") is not None for b in per) > 1
    fig = new_figure(13 if many else 8, 4.6)
    place(fig, left=0.9, right=0.3, top=0.6, bottom=0.7, wspace=0.3)
    axes = fig.subplots(1, 2 if many else 1, squeeze=False)[0]
    ax = axes[0]
    lows, tops = [], []
    for i, b in enumerate(per):
        color = BATCH_COLORS[i % len(BATCH_COLORS)]
        for k, rep in enumerate(b["repeats"]):
            lrs, loss = _finite(rep["lrs"]), _finite(rep["losses"])
            ok = np.isfinite(lrs) & np.isfinite(loss) & (lrs > 0)
            ax.plot(lrs[ok], loss[ok], color=color, lw=1.5 if k == 0 else 0.9,
                    alpha=1.0 if k == 0 else 0.45,
                    label=f"batch {b['batch_size']}" if k == 0 else None)
            if ok.any():  # the descent matters, not the blow-up: clip at the start's level
                low = int(np.argmin(np.where(ok, loss, np.inf)))
                lows.append(loss[low])
                tops.append(np.nanmax(loss[: low + 1][ok[: low + 1]]))
        lr = b.get("suggested_lr")
        if lr is not None:
            ax.axvline(lr, color=color, linestyle="--", lw=1,
                       label=f"suggested at batch {b['batch_size']}: {num(lr)}")
    ax.set_xscale("log")
    curves = any(b["repeats"] for b in per)
    untried = not curves and not any(b.get("trials") for b in per)
    if untried:  # a run too short for two miniatures: say why the axes are empty
        ax.text(0.5, 0.5, "no miniature trained: the run is too short to compare LRs within it,\n"
                "so the suggestion is the optimizer's conventional LR, untried",
                transform=ax.transAxes, ha="center", va="center", fontsize=9, color="0.35")
        ax.set_yticks([])
    elif not curves:
        _miniatures(ax, per)
    if lows:
        lo, hi = min(lows), max(tops)
        pad = 0.08 * (hi - lo) if hi > lo else 0.1
        ax.set_ylim(lo - pad, hi + pad)
    ax.set_xlabel("learning rate (grows each step)" if curves else "learning rate")
    ax.set_ylabel("training loss (smoothed)" if curves else "validation loss after the miniature")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", **LEGEND)
    axes_title(ax, "loss during the range test; faint: other seeds" if curves else
               "no miniatures" if untried else
               "miniatures of the run, one line per rung (length in steps)")
    if many:
        _lr_vs_batch(axes[1], r)
    _title(fig, v)
    return fig


def _miniatures(ax: Axes, per: list[dict[str, Any]]) -> None:
    """The horizon strategy's evidence without a range test: each rung's validation loss by
    LR on log axes (a blown-up miniature's loss would flatten the rest), per batch size."""
    ax.set_yscale("log")
    for i, b in enumerate(per):
        color = BATCH_COLORS[i % len(BATCH_COLORS)]
        steps = sorted({t["steps"] for t in b.get("trials", []) if t.get("val_loss") is not None})
        for k, h in enumerate(steps):
            rung = sorted((t for t in b["trials"] if t["steps"] == h and t.get("val_loss") is not None
                           and np.isfinite(t["val_loss"])), key=lambda t: t["lr"])
            if rung:
                ax.plot([t["lr"] for t in rung], [t["val_loss"] for t in rung], marker="o",
                        color=color, lw=1.5 if k == len(steps) - 1 else 0.9,
                        alpha=1.0 if k == len(steps) - 1 else 0.45,
                        label=f"batch {b['batch_size']}, {h} steps")


def _lr_vs_batch(ax: Axes, r: dict[str, Any]) -> None:
    """Suggested LR (median, min-max over seeds) per batch size, the fitted B^alpha and the
    linear and square-root rules through the smallest batch's suggestion."""
    rows = [b for b in r["per_batch"] if b.get("suggested_lr") is not None]
    b = np.array([float(x["batch_size"]) for x in rows])
    lr = np.array([float(x["suggested_lr"]) for x in rows])
    lo = np.array([float(x.get("lr_min") or x["suggested_lr"]) for x in rows])
    hi = np.array([float(x.get("lr_max") or x["suggested_lr"]) for x in rows])
    bar = ("suggested (best trial; bar: the candidate LRs that trained)" if r.get("strategy") == "trial"
           else "suggested (median; bar: min–max over seeds)")
    ax.errorbar(b, lr, yerr=[lr - lo, hi - lr], marker="o", color="C0", capsize=4, lw=0,
                elinewidth=1.2, label=bar)
    grid = np.geomspace(b.min(), b.max(), 50)
    if r.get("alpha") is not None and r.get("alpha_prefactor"):
        ax.plot(grid, r["alpha_prefactor"] * grid ** r["alpha"], color="C3", lw=1.3,
                label=f"fit: lr ∝ B^{r['alpha']:.2f}")
    for slope, name, style in ((1.0, "linear rule (∝ B)", ":"), (0.5, "square-root rule (∝ √B)", "-.")):
        ax.plot(grid, lr[0] * (grid / b[0]) ** slope, color="0.45", linestyle=style, lw=1.2, label=name)
    _batch_axis(ax, b)
    log_axis(ax, limits=(min(lo.min(), lr[0] * 0.8) / 1.3, max(hi.max(), lr[0] * (b.max() / b[0])) * 1.3))
    ax.set_ylabel("suggested learning rate")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="best", **LEGEND)
    axes_title(ax, "suggested LR vs batch size")


# -------------------------------------------------------------------------- max_batch
def _y_labels(ax: Axes, fmt: Callable[[float], str]) -> None:
    """Major and minor y tick labels through ``fmt`` (after ``log_axis``, which sets both)."""
    formatter = FuncFormatter(lambda y, _: fmt(y))
    ax.yaxis.set_major_formatter(formatter)
    if ax.yaxis.get_minor_formatter().__class__ is FuncFormatter:  # minor labels are shown
        ax.yaxis.set_minor_formatter(formatter)


def _bytes_axis(ax: Axes, values: np.ndarray) -> None:
    """A log-2 memory axis with ticks at powers of two (32 KiB, 64 KiB, ...), at most 8."""
    v = values[np.isfinite(values) & (values > 0)]
    if not v.size:
        return
    ax.set_yscale("log", base=2)
    ks = list(range(math.floor(math.log2(v.min())), math.ceil(math.log2(v.max())) + 1))
    step = max(1, math.ceil(len(ks) / 8))
    ax.set_yticks([2.0**k for k in ks[::step]], [fmt_bytes(2**k) for k in ks[::step]])
    ax.yaxis.set_minor_locator(NullLocator())


def _max_batch(v: ProbeView) -> Figure:
    r = v.result
    trials = r["trials"]
    fig = new_figure(8, 4.6)
    place(fig, left=1.1, right=0.3, top=0.6, bottom=0.7)
    ax = fig.subplots()
    b = np.array([float(t["batch_size"]) for t in trials])
    peak = _finite([t.get("peak_bytes") for t in trials])
    fits = np.array([bool(t["fits"]) for t in trials])
    order = np.argsort(b)
    known = np.isfinite(peak[order])
    ax.plot(b[order][known], peak[order][known], color="0.6", lw=1, zorder=1)
    ax.plot(b[fits], peak[fits], "o", color="C2", label="fits", zorder=2)
    if (~fits).any():  # an entry only when some size did not fit
        shown = ~fits & np.isfinite(peak)
        y = np.where(shown, peak, np.nanmax(peak) if np.isfinite(peak).any() else 1.0)
        ax.plot(b[~fits], y[~fits], "x", color="C3", markersize=9, mew=2,
                label="does not fit (no peak when it failed)" if not shown[~fits].all() else "does not fit")
    top = float(np.nanmax(peak)) if np.isfinite(peak).any() else 1.0
    for key, label, style in (("limit_bytes", "memory limit", "-"),
                              ("threshold_bytes", f"limit less the {r['margin']:.0%} margin", "--")):
        value = r.get(key)
        if value and value <= 50 * top:  # a limit far above every peak would flatten them
            ax.axhline(value, color="C3", linestyle=style, lw=1, label=f"{label}: {fmt_bytes(value)}")
    if r.get("recommended") is not None:
        ax.axvline(r["recommended"], color="C0", linestyle="--", lw=1,
                   label=f"recommended: {r['recommended']}")
    _batch_axis(ax, b)
    _bytes_axis(ax, np.append(peak, [ax.get_ylim()]))
    ax.set_ylabel(f"peak memory of one training step ({r.get('method')})")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", **LEGEND)
    far = r.get("limit_bytes") and r["limit_bytes"] > 50 * top
    axes_title(ax, f"limit {fmt_bytes(r.get('limit_bytes'))} ({r.get('limit_source')})"
               + (": far above every peak, not drawn" if far else ""), fontsize=9)
    _title(fig, v)
    return fig


# ------------------------------------------------------------------------- throughput
def _throughput(v: ProbeView) -> Figure:
    r = v.result
    b = np.array([float(x) for x in r["batch_sizes"]])
    sps = _finite(r["samples_per_s"])
    fig = new_figure(13, 4.6)
    place(fig, left=0.9, right=0.3, top=0.6, bottom=0.7, wspace=0.3)
    ax, mem = fig.subplots(1, 2, squeeze=False)[0]
    windows = r.get("window_samples_per_s") or []
    if len(windows) == len(b) and all(windows):
        lo = np.array([min(w) for w in windows], dtype=float)
        hi = np.array([max(w) for w in windows], dtype=float)
        ax.errorbar(b, sps, yerr=[np.maximum(sps - lo, 0), np.maximum(hi - sps, 0)], marker="o",
                    color="C0", capsize=4, lw=1.6, label="median of timed windows (bar: min–max)")
    else:
        ax.plot(b, sps, "o-", color="C0", lw=1.6, label="samples/s")
    if r.get("knee") is not None:
        ax.axvline(r["knee"], color="C3", linestyle="--", lw=1,
                   label=f"knee: {r['knee']} (doubling gains < {r.get('knee_gain', 1.1) - 1:.0%} after)")
    _batch_axis(ax, b)
    log_axis(ax)
    _y_labels(ax, num)
    ax.set_ylabel("training samples / s")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", **LEGEND)
    axes_title(ax, f"speed ({r.get('device')}, {r.get('threads')} thread(s))")
    peak = _finite(r.get("peak_bytes") or [None] * len(b))
    ok = np.isfinite(peak)
    mem.plot(b[ok], peak[ok], "s-", color="C1", lw=1.4)
    _batch_axis(mem, b)
    _bytes_axis(mem, peak)
    mem.set_ylabel(f"peak memory of one step ({r.get('memory_method')})")
    mem.grid(alpha=0.3)
    axes_title(mem, "memory")
    _title(fig, v)
    return fig


# ------------------------------------------------------------------------ noise_scale
def _noise_scale(v: ProbeView) -> Figure:
    r = v.result
    steps = _finite(r.get("steps") or [])
    trace = _finite(r.get("trace_b_simple") or [])
    fig = new_figure(13, 4.6)
    place(fig, left=0.9, right=0.3, top=0.6, bottom=0.7, wspace=0.3)
    ax, lossax = fig.subplots(1, 2, squeeze=False)[0]
    ok = np.isfinite(steps) & np.isfinite(trace)
    if ok.any():
        ax.plot(steps[ok], trace[ok], color="C0", lw=1.4, label="running estimate (moving average)")
    b, lo, hi = r.get("b_simple"), r.get("ci_low"), r.get("ci_high")
    xs = (steps[ok].min(), steps[ok].max()) if ok.any() else (0.0, 1.0)
    if b is not None and math.isfinite(b):
        ax.axhline(b, color="C3", lw=1.5, label=f"B_simple over the whole probe: {num(b)}")
        if lo is not None and hi is not None:
            ax.fill_between(xs, lo, hi, color="C3", alpha=0.15, lw=0,
                            label=f"95% interval: {num(lo)}–{num(hi)}")
    if r.get("batch_size"):
        ax.axhline(r["batch_size"], color="0.35", linestyle=":", lw=1.2,
                   label=f"the batch size probed: {r['batch_size']}")
    ax.set_xlabel("training step")
    ax.set_ylabel("gradient noise scale (examples)")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", **LEGEND)
    axes_title(ax, "a batch near B_simple balances steps against examples")
    loss = _finite(r.get("trace_loss") or [])
    lok = np.isfinite(loss) & np.isfinite(steps) if loss.size == steps.size else np.zeros(0, bool)
    if lok.any():
        lossax.plot(steps[lok], loss[lok], color="0.3", lw=1)
    lossax.set_xlabel("training step")
    lossax.set_ylabel("training loss of the step")
    lossax.grid(alpha=0.3)
    axes_title(lossax, "loss while measuring")
    _title(fig, v)
    return fig


# -------------------------------------------------------------------------- recommend
def _recommend(v: ProbeView) -> Figure:
    r = v.result
    preds = r["predictions"]
    fig = new_figure(8, 4.6)
    place(fig, left=0.9, right=0.3, top=0.6, bottom=0.7)
    ax = fig.subplots()
    b = np.array([float(p["batch_size"]) for p in preds])
    seconds = all(p.get("seconds") is not None for p in preds)
    y = _finite([p["seconds"] if seconds else p.get("relative_time") for p in preds])
    fits = np.array([bool(p.get("fits", True)) for p in preds])
    # a batch predicted to need more than the user's epochs is drawn hollow: never chosen
    # (results stored before the examples factor was recorded have every batch eligible)
    slack = r.get("examples_slack") or math.inf
    more = np.array([(p.get("examples_factor") or 1.0) > slack for p in preds])
    ax.plot(b, y, "-", color="0.6", lw=1)
    ax.plot(b[fits & ~more], y[fits & ~more], "o", color="C0", label="predicted time to target")
    if (fits & more).any():
        ax.plot(b[fits & more], y[fits & more], "o", mfc="none", color="C0",
                label="needs more epochs than yours")
    if (~fits).any():
        ax.plot(b[~fits], y[~fits], "x", color="C3", markersize=9, mew=2, label="does not fit in memory")
    ax.axvline(r["batch_size"], color="C2", linestyle="--", label=f"recommended: {r['batch_size']}")
    if r.get("b_noise"):
        ax.axvline(r["b_noise"], color="0.4", linestyle=":", label=f"B_noise ≈ {num(r['b_noise'])}")
    _batch_axis(ax, b)
    log_axis(ax)
    ax.set_ylabel("time to target (s)" if seconds else "time to target (relative to the best)")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", **LEGEND)
    axes_title(ax, "time(B) ∝ (B + B_noise) / throughput(B)", fontsize=9)
    _title(fig, v)
    return fig


DRAW: dict[str, Callable[[ProbeView], Figure]] = {
    "lr_range": _lr_range, "max_batch": _max_batch, "throughput": _throughput,
    "noise_scale": _noise_scale, "recommend": _recommend,
}


def probe_figure(v: ProbeView) -> Figure | None:
    """The figure of one probe; the generic one for another kind or shape; None when the
    result holds nothing to draw."""
    draw = DRAW.get(v.kind)
    if draw is not None:
        try:
            return draw(v)
        except (KeyError, TypeError, ValueError, IndexError):
            pass  # an older or hand-written result: plot what arrays it has
    return summaryplots.probe(v.plot) if v.plot.ys else None


def result_figure(kind: str, result: dict[str, Any], config: dict[str, Any] | None = None) -> Figure:
    """The figure of a probe result not (yet) stored: ``kind`` and its ``to_dict()``.
    ``.plot()`` of every probe result type; ProbeError when the result holds nothing to draw."""
    import time

    fig = probe_figure(view(ProbeRecord(0, "", kind, time.time(), config or {}, result)))
    if fig is None:
        raise ReportError(f"this {kind} result holds no measurements to draw.")
    return fig


def write_probe_figure(record: ProbeRecord, path: Path) -> Path | None:
    """Draw the figure of a stored probe to ``path`` (PNG): what ``batchlab lr-find``,
    ``max-batch``, ``throughput``, ``noise-scale`` and ``recommend`` write beside the store."""
    fig = probe_figure(view(record))
    if fig is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", metadata={"Software": None})
    return path
