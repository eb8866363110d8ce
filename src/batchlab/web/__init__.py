"""The browser side of batchlab: ``batchlab dashboard`` (a read-only local web app over a
store, ``server``), the JSON it serves (``payload``), and the interactive charts shared with
the static report (``charts.js`` on uPlot, vendored in ``vendor/``)."""

from __future__ import annotations

from importlib import resources


def asset(name: str) -> bytes:
    """The bytes of a file packaged under ``batchlab/``, e.g. 'web/charts.js'."""
    return resources.files("batchlab").joinpath(name).read_bytes()
