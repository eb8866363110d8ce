"""The report's interactive learning curves: the dashboard's charts (``web/charts.js`` on the
vendored uPlot) inlined with their data, so the report stays one file that opens offline.

The data is JSON inside ``<script type="application/json">``: every '<', '>' and '&' in it is
written as a \\u escape, so no text from the store (a run named ``</script><script>...``)
can end the block or become markup; the page reads it with ``JSON.parse`` and builds its DOM
with ``textContent``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from batchlab.report.plotdata import RunData
from batchlab.web import asset, payload

# per line: enough for hover values and zoom, small enough for a report of many long runs
MAX_POINTS = 1000


def script_json(obj: Any) -> str:
    """``obj`` as JSON that is safe inside a <script> element (no '<', '>' or '&' left)."""
    text = json.dumps(obj, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _inline_js(name: str) -> str:
    """A packaged script for an inline <script> (one with '</' in it would end the element
    early: refused). The vendored banner's web address loses its scheme: the report names
    no URL."""
    text = asset(name).decode("utf-8").replace("https://", "")
    if "</" in text:  # never in these files; a future edit that adds one must escape it itself
        raise ValueError(f"{name} contains '</', which would end its inline <script> early")
    return text


def data(runs: Sequence[RunData], analysis: Any) -> dict[str, Any]:
    """What the charts draw: the runs' rows and style, each line thinned to ``MAX_POINTS``,
    and the diagnosis shown beside the curves (the dashboard's payloads, from loaded runs)."""
    records = [r.record for r in runs]
    return {"runs": payload.runs(records), "style": payload.style(records),
            "curves": payload.thinned_curves(((r.run_id, r.series) for r in runs), MAX_POINTS),
            "summary": payload.analysis_summary(runs, analysis, [])}


def section(runs: Sequence[RunData], analysis: Any) -> str:
    """The section's HTML: style legend, two charts, the diagnosis beside them, the data and
    the inlined scripts and styles."""
    styles = asset("web/vendor/uPlot.min.css").decode() + asset("web/charts.css").decode()
    return (
        f"<style>{styles}</style>"
        '<div class="bl-interactive"><p class="note">Hover for values; click a run in a legend to '
        "hide it; drag to zoom (double-click or 'reset zoom' to undo); choose the metric, the x "
        "axis (epochs, steps, examples seen, wall time), a log y axis and the smoothing. Colour = "
        "the learning rate applied, line style = batch size, as in the figures below.</p>"
        '<div class="bl-legend-box"></div><div class="bl-curves"><div class="bl-chart"></div>'
        '<div class="bl-chart"></div><aside class="bl-diagnosis card"></aside></div>'
        f'<script type="application/json" class="bl-data">{script_json(data(runs, analysis))}</script>'
        f"<script>{_inline_js('web/vendor/uPlot.iife.min.js')}</script>"
        f"<script>{_inline_js('web/charts.js')}</script>"
        f"<script>{_inline_js('web/report.js')}</script></div>"
    )
