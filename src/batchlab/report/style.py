"""The one style mapping of every report figure: colour = the learning rate applied (after the
scaling rule), line style = batch size.

Every figure asks ``StyleMap.of(lr, batch_size)`` for its line properties, so a run looks the
same in every panel of every figure (and in both halves of a comparison, when the map is built
from the union of both experiments). Legends are compact: one entry per LR colour and one per
batch-size line style, never one entry per run, so they stay readable at 12+ runs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib as mpl
from matplotlib.lines import Line2D

# Solid, dashed, dotted, dash-dot, dash-dot-dot, sparse dots, long dashes, sparse dash-dot:
# each differs from its neighbours in rhythm, not just dash length, so they stay apart at
# thin widths and in print.
LINESTYLES: tuple[Any, ...] = (
    "-", (0, (6, 2.5)), (0, (1, 1.5)), (0, (7, 2, 1.5, 2)), (0, (7, 2, 1.5, 2, 1.5, 2)),
    (0, (1, 4)), (0, (14, 4)), (0, (3, 4, 1, 4)),
)
# plasma from dark blue to orange: ordered (small LR dark, large LR bright), and it stops
# before the pale yellow end that vanishes on a white background.
LR_CMAP = "plasma"
CMAP_RANGE = (0.0, 0.85)
MAX_LEGEND_LRS = 10


def fmt_lr(lr: float) -> str:
    """A short LR label: 0.1, 0.003, 1e-05."""
    return f"{lr:g}"


@dataclass(frozen=True)
class StyleMap:
    """Line properties per (lr, batch size), built from every value that will be drawn."""

    lrs: tuple[float, ...]
    batch_sizes: tuple[int, ...]
    # applied LR -> the spec LRs that became it, where they differ (a scaling rule is on)
    spec: tuple[tuple[float, tuple[float, ...]], ...] = ()

    @classmethod
    def build(cls, lrs: Iterable[float | None], batch_sizes: Iterable[int | None],
              spec_lrs: Iterable[float | None] | None = None) -> StyleMap:
        """Distinct finite LRs (the applied ones) and batch sizes, sorted; unknown values still
        get a style. ``spec_lrs``, parallel to ``lrs``: the LR each came from in the spec, for
        legend labels such as 'lr 0.02 (spec 0.01)'."""
        lrs = list(lrs)
        clean_lrs = sorted({float(v) for v in lrs if v is not None and math.isfinite(float(v))})
        origin: dict[float, set[float]] = {}
        for lr, spec_lr in zip(lrs, spec_lrs if spec_lrs is not None else lrs, strict=True):
            if lr is not None and spec_lr is not None and not math.isclose(lr, spec_lr):
                origin.setdefault(float(lr), set()).add(float(spec_lr))
        spec = tuple((lr, tuple(sorted(v))) for lr, v in sorted(origin.items()))
        return cls(tuple(clean_lrs), tuple(sorted({int(b) for b in batch_sizes if b is not None})), spec)

    def lr_label(self, lr: float) -> str:
        """'lr 0.02', or 'lr 0.02 (spec 0.01)' when the spec's LR was scaled to it."""
        origin = dict(self.spec).get(lr)
        return f"lr {fmt_lr(lr)}" + (f" (spec {', '.join(map(fmt_lr, origin))})" if origin else "")

    def color(self, lr: float | None) -> tuple[float, float, float, float]:
        """Colour by the LR's position on a log scale between the smallest and largest LR."""
        cmap = mpl.colormaps[LR_CMAP]
        lo, hi = CMAP_RANGE
        if lr is None or not self.lrs or lr <= 0 or self.lrs[0] <= 0:
            return cmap(lo)
        a, b = math.log(self.lrs[0]), math.log(self.lrs[-1])
        t = 0.5 if b == a else (math.log(lr) - a) / (b - a)
        return cmap(lo + (hi - lo) * min(max(t, 0.0), 1.0))

    def linestyle(self, batch_size: int | None) -> Any:
        if batch_size is None or batch_size not in self.batch_sizes:
            return LINESTYLES[0]
        return LINESTYLES[self.batch_sizes.index(batch_size) % len(LINESTYLES)]

    def of(self, lr: float | None, batch_size: int | None) -> dict[str, Any]:
        """Keyword arguments for ``Axes.plot``: the colour of the LR, the dash of the batch."""
        return {"color": self.color(lr), "linestyle": self.linestyle(batch_size)}

    def legend_handles(self, extra: Sequence[tuple[str, dict[str, Any]]] = ()) -> list[Line2D]:
        """Compact legend: one line per LR (colour), one per batch size (black, its dash), then
        ``extra`` (label, Line2D kwargs) entries such as 'raw' vs 'smoothed'."""
        handles: list[Line2D] = []
        lrs = list(self.lrs)
        if len(lrs) > MAX_LEGEND_LRS:  # random search: show the range, not 50 entries
            step = (len(lrs) - 1) / (MAX_LEGEND_LRS - 1)
            lrs = [lrs[round(i * step)] for i in range(MAX_LEGEND_LRS)]
        for lr in lrs:
            handles.append(Line2D([], [], color=self.color(lr), lw=2.5, label=self.lr_label(lr)))
        for b in self.batch_sizes:
            handles.append(Line2D([], [], color="0.15", lw=1.6, linestyle=self.linestyle(b),
                                  label=f"batch {b}"))
        for label, kwargs in extra:
            handles.append(Line2D([], [], label=label, **{"color": "0.3", **kwargs}))
        return handles
