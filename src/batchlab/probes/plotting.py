"""``.plot()`` for the probes' result types, as fastai's and Lightning's finders offer.

The drawing lives in ``batchlab.report`` (the same figure the report and the probe commands
draw); it is imported when ``plot()`` is called, so running a probe never needs matplotlib.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from matplotlib.figure import Figure


class Plottable:
    """Mixin of a probe result with ``to_dict()``: ``KIND`` is its stored probe kind."""

    KIND: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:  # pragma: no cover - every result defines it
        raise NotImplementedError

    def plot(self) -> Figure:
        """This result's figure (a ``matplotlib.figure.Figure``; in a notebook it shows
        itself; ``fig.savefig(path)`` writes it)."""
        from batchlab.report.probefigs import result_figure

        return result_figure(self.KIND, self.to_dict())
