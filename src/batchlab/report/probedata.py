"""Probe results as the report shows them: pure functions from stored probe records to plain
data (no drawing here).

Each stored probe becomes a ``ProbeView``: its kind, the settings it ran with (in words), a
one-line reading of its result, and its arrays for the generic figure of a kind this module
does not know. A probe re-run with the same settings is shown once, the latest result:
``latest_views`` keys results by (kind, run config, the probe's own settings).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from batchlab.analysis.scaling import alpha_line
from batchlab.results import scaled_config_lr
from batchlab.store import ProbeRecord, Store

# Page order of the known probe kinds; any other kind follows them.
KIND_ORDER = ("lr_range", "max_batch", "throughput", "noise_scale", "recommend")
KIND_TITLES = {"lr_range": "LR suggestion", "max_batch": "Largest batch that fits",
               "throughput": "Throughput", "noise_scale": "Gradient noise scale",
               "recommend": "Recommendation"}
# Result fields that are the probe's own settings (the run config is the rest of the key).
_SETTING_FIELDS = {
    "lr_range": ("settings", "batch_sizes", "strategy"),
    "max_batch": ("margin", "memory_limit", "upper"),
    "throughput": ("settings", "batch_sizes", "skipped", "threads"),
    "noise_scale": ("batch_size", "micro_batches"),
    "recommend": ("batch_sizes",),
}


# ------------------------------------------------------------------- generic arrays
# Preferred x arrays of a result, in order; any other numeric array of the same length is
# plotted against it (for a probe kind without a figure of its own).
PROBE_X_KEYS = ("lrs", "lr", "batch_sizes", "batch_size", "steps", "step", "x")
PROBE_Y_FIRST = ("losses", "samples_per_s", "trace_b_simple", "peak_bytes")


@dataclass(frozen=True)
class ProbePlot:
    """A probe's plottable arrays (if any) and the rest of its result, for the summary."""

    id: int
    kind: str
    x_key: str | None
    x: np.ndarray | None
    ys: dict[str, np.ndarray]
    summary: dict[str, Any]


def _numeric_array(value: Any) -> np.ndarray | None:
    """A list of >= 2 numbers (None/'NaN' allowed) as floats; anything else None."""
    if not isinstance(value, list) or len(value) < 2:
        return None
    if not all(v is None or isinstance(v, int | float | str) and not isinstance(v, bool) for v in value):
        return None
    try:
        arr = np.array([np.nan if v is None else float(v) for v in value])
    except ValueError:  # a list of words
        return None
    return arr if np.isfinite(arr).any() else None


def _columns(result: dict[str, Any]) -> dict[str, np.ndarray]:
    """Numeric arrays of a result: top-level lists, and lists of flat records as columns."""
    arrays: dict[str, np.ndarray] = {}
    for key, value in result.items():
        arr = _numeric_array(value)
        if arr is not None:
            arrays[key] = arr
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for col in dict.fromkeys(k for v in value for k in v):
                arr = _numeric_array([v.get(col) for v in value])
                if arr is not None:
                    arrays.setdefault(col, arr)
    return arrays


def probe_plot(record: ProbeRecord) -> ProbePlot:
    """The numeric arrays of one stored probe, found generically."""
    result = record.result if isinstance(record.result, dict) else {"result": record.result}
    arrays = _columns(result)
    x_key = next((k for k in PROBE_X_KEYS if k in arrays), None)
    x = arrays.pop(x_key) if x_key else None
    length = x.size if x is not None else None
    ys = {k: v for k, v in arrays.items() if length is None or v.size == length}
    ys = dict(sorted(ys.items(), key=lambda kv: (PROBE_Y_FIRST + (kv[0],)).index(kv[0])))
    summary = {k: v for k, v in result.items() if _numeric_array(v) is None}
    return ProbePlot(record.id, record.kind, x_key, x, ys, summary)


def probe_plots(store: Store, experiment: str) -> list[ProbePlot]:
    """Every probe stored under ``experiment``, oldest first, as generic arrays."""
    return [probe_plot(p) for p in store.probes(experiment)]


# ------------------------------------------------------------------------- views
@dataclass(frozen=True)
class ProbeView:
    """One probe as the report shows it. ``replaces``: ids of earlier results of the same
    kind and settings that this one supersedes (not shown)."""

    id: int
    kind: str
    title: str
    settings: str
    reading: str
    result: dict[str, Any]
    config: dict[str, Any]
    plot: ProbePlot
    replaces: tuple[int, ...] = ()


def settings_key(record: ProbeRecord) -> str:
    """What makes two results of a probe comparable: kind, run config and probe settings."""
    result = record.result if isinstance(record.result, dict) else {}
    own = {k: result.get(k) for k in _SETTING_FIELDS.get(record.kind, ())}
    return json.dumps([record.kind, record.config, own], sort_keys=True, default=str)


def latest_views(records: Sequence[ProbeRecord]) -> list[ProbeView]:
    """The latest result per (kind, settings), known kinds first in ``KIND_ORDER``, then by id;
    each view lists the ids of the earlier results it replaces."""
    groups: dict[str, list[ProbeRecord]] = {}
    for r in sorted(records, key=lambda r: r.id):
        groups.setdefault(settings_key(r), []).append(r)
    views = [view(rs[-1], tuple(r.id for r in rs[:-1])) for rs in groups.values()]
    rank = {k: i for i, k in enumerate(KIND_ORDER)}
    return sorted(views, key=lambda v: (rank.get(v.kind, len(rank)), v.id))


def probe_views(store: Store, experiment: str) -> list[ProbeView]:
    """``latest_views`` of every probe stored under ``experiment``."""
    return latest_views(store.probes(experiment))


def view(record: ProbeRecord, replaces: tuple[int, ...] = ()) -> ProbeView:
    result = record.result if isinstance(record.result, dict) else {"result": record.result}
    settings, reading = describe(record.kind, result, record.config)
    return ProbeView(record.id, record.kind, KIND_TITLES.get(record.kind, f"Probe {record.kind}"),
                     settings, reading, result, record.config, probe_plot(record), replaces)


# ----------------------------------------------------------------------- words
def num(v: Any, digits: int = 3) -> str:
    """A number in a sentence: 3 significant digits, thousands as k/M; '?' when missing."""
    if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v):
        return "?"
    for size, unit in ((1e6, "M"), (1e3, "k")):
        if abs(v) >= size:
            return f"{v / size:.{digits}g}{unit}"
    return f"{v:.{digits}g}"


def fmt_bytes(n: Any) -> str:
    """1536 -> '1.5 KiB' (binary units)."""
    if not isinstance(n, int | float) or not math.isfinite(n):
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1024
    return "?"  # unreachable: the loop returns at GiB


def _sizes(values: Sequence[Any]) -> str:
    return ", ".join(str(v) for v in values)


def describe(kind: str, result: dict[str, Any], config: dict[str, Any]) -> tuple[str, str]:
    """(settings in words, one-line reading) of a probe result. Results of an older or
    hand-written shape get what can be said from their fields."""
    train = config.get("train", {}) if isinstance(config, dict) else {}
    fn = {"lr_range": _lr_range, "max_batch": _max_batch, "throughput": _throughput,
          "noise_scale": _noise_scale, "recommend": _recommend}.get(kind)
    if fn is None:
        return "", _generic(result)
    try:
        return fn(result, train)
    except (KeyError, TypeError, ValueError, IndexError):  # another shape: say what we can
        return "", _generic(result)


def _generic(result: dict[str, Any]) -> str:
    scalars = [f"{k} = {num(v) if isinstance(v, int | float) else v}" for k, v in result.items()
               if isinstance(v, int | float | str) and not isinstance(v, bool) and len(str(v)) < 80]
    return "; ".join(scalars[:6]) or "no scalar result stored"


def _lr_range(r: dict[str, Any], train: dict[str, Any]) -> tuple[str, str]:
    per = r.get("per_batch") or []
    s = r.get("settings") or {}
    settings = ""
    if per:
        seeds = s.get("repeats", len(per[0].get("repeats", [])))
        settings = f"batch sizes {_sizes([b['batch_size'] for b in per])}; "
        if r.get("strategy") == "horizon":  # miniatures; a range test only with repeats >= 1
            budget = f" within {num(s['budget'])} of the run's steps" if s.get("budget") else ""
            settings += f"miniatures of the run{budget}"
            settings += (f"; beside them a range test, {seeds} seed(s) each, LR from "
                         f"{num(s.get('start_lr'))} to {num(s.get('end_lr'))} over "
                         f"{s.get('steps', '?')} steps") if seeds else " (no range test)"
        else:
            settings += (f"{seeds} seed(s) each; LR from {num(s.get('start_lr'))} to "
                         f"{num(s.get('end_lr'))} over {s.get('steps', '?')} steps")
    if not per:
        return settings, f"suggested LR {num(r['suggested_lr'])}" if r.get("suggested_lr") else _generic(r)
    found = [f"{num(b['suggested_lr'])} at batch {b['batch_size']}" if b.get("suggested_lr")
             else f"none at batch {b['batch_size']} ({b.get('reason')})" for b in per]
    if r.get("strategy") == "trial":
        cost = f"; the probe cost {r['cost_epochs']:.1f} epochs" if r.get("cost_epochs") else ""
        rule = f" (the best of 5 short trial runs below the range test's loss minimum{cost})"
    elif r.get("strategy") == "horizon":
        rule = " (the best of miniatures of the run, compared by successive halving)"
    else:
        rule = f" ({r['strategy']} rule, median over seeds)" if r.get("strategy") else ""
    text = f"Suggested LR: {'; '.join(found)}{rule}."
    if len(per) > 1:
        # words that match the exponent's sign (alpha_line: the CLI's line, the same words)
        text += (f" Across batch sizes the {alpha_line(r['alpha'])}." if r.get("alpha") is not None
                 else f" No exponent across batch sizes: {r.get('alpha_reason')}.")
    return settings, text


def _max_batch(r: dict[str, Any], train: dict[str, Any]) -> tuple[str, str]:
    settings = (f"margin {r['margin']:.0%}; tried up to {r.get('upper')}; limit: "
                f"{fmt_bytes(r.get('limit_bytes'))} ({r.get('limit_source')}); {r.get('device')}, "
                f"{r.get('method')}")
    trials = r.get("trials") or []
    peak = next((t["peak_bytes"] for t in trials if t["batch_size"] == r["largest"]), None)
    rec = (f"recommended with a {r['margin']:.0%} margin: {r['recommended']}"
           if r.get("recommended") is not None else
           f"no batch keeps a {r['margin']:.0%} margin free")
    text = (f"Largest batch that fits: {r['largest']} (the search ended at: {r.get('limited_by')}); "
            f"{rec}; its step peaks at {fmt_bytes(peak)} of a {fmt_bytes(r.get('limit_bytes'))} limit.")
    return settings, text + "".join(f" {n}" for n in r.get("notes") or [])


def _throughput(r: dict[str, Any], train: dict[str, Any]) -> tuple[str, str]:
    s = r.get("settings") or {}
    bs, sps = r["batch_sizes"], r["samples_per_s"]
    settings = (f"batch sizes {_sizes(bs)}; {r.get('device')}, {r.get('threads')} thread(s); "
                f"{s.get('windows', '?')} timed windows each after {s.get('warmup_steps', '?')} "
                "warm-up steps")
    if not bs:
        return settings, "no batch size could be measured."
    best = int(np.nanargmax(np.array(sps, dtype=float)))
    text = (f"Samples/s rise from {num(sps[0])} at batch {bs[0]} to {num(sps[best])} at batch "
            f"{bs[best]}; ")
    why = str(r.get("knee_reason")).rstrip(".")  # a reason may end its own sentence
    text += (f"knee at batch {r['knee']}: {why}." if r.get("knee") is not None else f"no knee: {why}.")
    return settings, text + "".join(f" {n}" for n in r.get("notes") or [])


def noise_advice(b_simple: float, batch_size: int | None) -> str:
    """The noise scale in the user's terms: what it means for the batch size to pick.

    With S(B) = S_min (1 + B_noise/B) steps and E(B) = E_min (1 + B/B_noise) examples to a
    target (McCandlish et al. 2018), B = B_noise costs 2x the fewest steps and 2x the fewest
    examples; far below it each step is wasted on noise, far above it examples are.
    """
    text = (f"Up to about {num(b_simple)} examples per step, doubling the batch nearly halves "
            f"the steps to a given loss; far above it, extra examples per step buy little "
            f"(steps to a target ≈ S_min·(1 + {num(b_simple)}/B)).")
    if batch_size:
        factor = f"{1 + b_simple / batch_size:.2g}"
        if batch_size < b_simple / 2:
            text += (f" Your batch {batch_size} is well below it: it needs ≈ {factor}× the fewest "
                     "steps, and a larger batch would cut the steps nearly in proportion.")
        elif batch_size > 2 * b_simple:
            text += (f" Your batch {batch_size} is well above it: it needs ≈ {factor}× the fewest "
                     "steps, so a larger batch saves few steps and costs more examples.")
        else:
            examples = f"{1 + batch_size / b_simple:.2g}"
            text += (f" Your batch {batch_size} is near it: it needs ≈ {factor}× the fewest steps "
                     f"and ≈ {examples}× the fewest examples, a balanced choice.")
    return text


def ema_note(r: dict[str, Any]) -> str:
    """Why the end-of-run EMA may sit outside the interval (said only when it does)."""
    ema, lo, hi = r.get("b_simple_ema"), r.get("ci_low"), r.get("ci_high")
    if not all(isinstance(v, int | float) and math.isfinite(v) for v in (ema, lo, hi)):
        return ""
    if lo <= ema <= hi:
        return f" The trace's last value {num(ema)} lies inside the interval."
    return (f" The trace ends at {num(ema)}, outside the interval: the trace is a moving average "
            "that weights the last steps most, and the noise scale changes as training proceeds "
            "(it usually grows as the loss falls), while the interval is for the whole probe.")


def _noise_scale(r: dict[str, Any], train: dict[str, Any]) -> tuple[str, str]:
    b = r["b_simple"]
    steps = r.get("steps") or []
    settings = (f"batch {r.get('batch_size')} split into {r.get('micro_batches')} micro-batches; "
                f"{len(steps)} training steps at lr {num(scaled_config_lr(train, r.get('batch_size')))}")
    if not isinstance(b, int | float) or not math.isfinite(b):
        return settings, f"No estimate: {r.get('reason')}."
    ci = f" (95% CI {num(r.get('ci_low'))}–{num(r.get('ci_high'))})" if r.get("ci_low") is not None else ""
    text = f"Gradient noise scale B_simple ≈ {num(b)}{ci}. {noise_advice(b, r.get('batch_size'))}"
    return settings, text + ema_note(r)


def _recommend(r: dict[str, Any], train: dict[str, Any]) -> tuple[str, str]:
    settings = f"candidate batch sizes {_sizes(r.get('batch_sizes') or [])}"
    warm = f", warm-up {r['warmup_steps']} steps" if r.get("warmup_steps") else ", no warm-up"
    text = (f"Recommended: batch {r['batch_size']}, lr {num(r['lr'])} ({r.get('lr_source')}){warm}; "
            f"B_noise ≈ {num(r.get('b_noise'))}.")
    return settings, text
