"""The browser side of batchlab: ``batchlab dashboard`` (a read-only local web app over a
store, ``server``), the JSON it serves (``payload``), and the interactive charts shared with
the static report (``charts.js`` on uPlot, vendored in ``vendor/``)."""
