"""Figure plumbing shared by every drawing function: create, mark empty, save once.

Figures are plain ``matplotlib.figure.Figure`` objects on an Agg canvas, never pyplot: no
global figure registry, no GUI backend, safe in a notebook or a server.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

DPI = 100


@dataclass(frozen=True)
class FigureFile:
    """A saved figure: its PNG bytes (embedded in the HTML) and the file written beside it."""

    name: str
    title: str
    caption: str
    path: Path
    png: bytes


def new_figure(width: float, height: float) -> Figure:
    """A figure of ``width`` x ``height`` inches on an Agg canvas.

    No layout engine: constrained layout measures every tick label of every axes and cost
    most of the report's time on a 5 x 5 grid; ``place`` sets fixed margins instead.
    """
    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def place(fig: Figure, *, left: float = 0.8, right: float = 0.3, top: float = 0.7,
          bottom: float = 0.6, wspace: float = 0.25, hspace: float = 0.3) -> None:
    """Fixed margins in inches (so they do not grow with the figure) around the subplots;
    ``wspace``/``hspace`` as fractions of the average axes width/height."""
    w, h = fig.get_size_inches()
    fig.subplots_adjust(left=left / w, right=1 - right / w, top=1 - top / h, bottom=bottom / h,
                        wspace=wspace, hspace=hspace)


def log_axis(ax: Axes, which: str = "y", limits: tuple[float, float] | None = None) -> None:
    """Log scale, called after the data (and ``limits``, if any) are set. Labels are plain
    ('0.5', '2', not '5 x 10^-1') over up to 4 decades. Data within a factor 3 stay linear: a
    log axis would show no tick at all. Minor ticks only under 1.5 decades: with dozens of
    panels, minor tick objects cost more time than everything else drawn."""
    axis = ax.yaxis if which == "y" else ax.xaxis
    if limits is None:
        lo, hi = axis.get_data_interval()
    else:
        lo, hi = limits
    if not (np.isfinite(lo) and np.isfinite(hi) and lo > 0 and hi / lo >= 3):
        return
    (ax.set_yscale if which == "y" else ax.set_xscale)("log")
    if limits is not None:
        (ax.set_ylim if which == "y" else ax.set_xlim)(*limits)
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    if math.log10(hi / lo) <= 4:  # wider: matplotlib's 10^k labels stay short, '1e-05' would not
        axis.set_major_formatter(plain)
    if math.log10(hi / lo) < 1.5:
        axis.set_minor_locator(LogLocator(subs=(2, 3, 5)))
        axis.set_minor_formatter(plain)
    else:
        axis.set_minor_locator(NullLocator())


def axes_title(ax: Axes, text: str, fontsize: float = 10) -> None:
    """An axes title at a fixed height: matplotlib otherwise measures every tick label of the
    axes to place it, which dominated the drawing time of the small-multiples grid."""
    ax.set_title(text, fontsize=fontsize, y=1.0, pad=4)


def legend_right(fig: Figure, handles: list[Any], right: float) -> None:
    """The compact legend in the right margin of ``right`` inches, aligned with the top of the
    axes: never higher, where it would run into the figure's title."""
    w, _ = fig.get_size_inches()
    top = fig.subplotpars.top
    fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(1 - (right - 0.1) / w, top),
               fontsize=9, frameon=False, handlelength=4)  # long enough to show each dash


def no_data(ax: Axes, why: str) -> None:
    """Mark an axes that has nothing to draw, so a figure is never silently blank."""
    ax.text(0.5, 0.5, f"no data: {why}", ha="center", va="center", wrap=True,
            transform=ax.transAxes, fontsize=10, color="0.35")
    ax.set_xticks([])
    ax.set_yticks([])


def save_figure(fig: Figure, folder: Path, name: str, title: str, caption: str = "") -> FigureFile:
    """Render ``fig`` to PNG once, write it to ``folder/name.png`` and keep the bytes.

    The PNG carries no 'Software' text chunk: it would put matplotlib's web address inside
    the report, and the report must not reference anything outside itself.
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    png = buf.getvalue()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    path.write_bytes(png)
    return FigureFile(name, title, caption, path, png)
