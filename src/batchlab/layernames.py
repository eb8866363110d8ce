"""The stored names of per-layer signals: ``layer/<layer>/<signal>``.

Below both the trainer (``batchlab.train.watch`` writes them) and the analysis, report and
dashboard (which read them), and free of torch so that reading them stays cheap.
"""

from __future__ import annotations

PREFIX = "layer/"
SIGNALS = ("grad_norm", "update_ratio", "dead_frac")


def metric_name(layer: str, signal: str) -> str:
    """``layer/<layer>/<signal>``: the stored name of one per-layer signal (a model's own
    parameters, at the root, are the layer ``model``)."""
    return f"{PREFIX}{layer or 'model'}/{signal}"


def parse_metric(name: str) -> tuple[str, str] | None:
    """(layer, signal) of a per-layer metric name, None for any other metric."""
    if not name.startswith(PREFIX) or name.count("/") < 2:
        return None
    layer, signal = name[len(PREFIX):].rsplit("/", 1)
    return layer, signal
