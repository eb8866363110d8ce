"""Diagnose a run from its per-layer signals (``layer/<name>/...``, ``batchlab.train.watch``).

Pure functions from the stored series to :class:`Finding` s, in plain words with the numbers:

- ``no_gradient``: a layer whose gradient norm is 0 at every measurement while others learn
  (a ``.detach()`` upstream of it, or parameters frozen by hand);
- ``exploding_gradients``: in a run that diverged, the layer whose gradient norm grew the most
  before the divergence;
- ``vanishing_gradients``: the first layers' update ratio orders of magnitude below the last
  layers' (a deep sigmoid/tanh stack, a bad initialisation);
- ``dead_units``: a layer most of whose units a following ReLU zeroes on every probe example.

Every check is silent without the series it needs (a run recorded without ``train.watch``).
The thresholds are in :class:`LayerThresholds`, each with the reason for its default.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from batchlab.analysis import series as S
from batchlab.analysis.findings import Finding, at, pct
from batchlab.layernames import PREFIX, parse_metric
from batchlab.store import Series

#: The per-layer kinds (their place among all kinds is ``findings.KINDS``).
LAYER_KINDS = ("exploding_gradients", "no_gradient", "vanishing_gradients", "dead_units")


@dataclass(frozen=True)
class LayerThresholds:
    """The named thresholds of the per-layer checks.

    no_gradient_norm: a gradient norm at or below this (1e-12) is no gradient: float32
        gradients that reach a layer at all are many orders larger, even when they vanish.
    explode_growth: a layer's gradient norm growing by this factor (10x) from its first
        measurement to its last before a divergence is exploding (the loss check's factor).
    vanishing_ratio: the first layers' median update ratio below this fraction (1e-2) of the
        last layers' is vanishing: in healthy nets the ratios of all layers lie within about one
        order of magnitude of each other (~1e-3 each), a deep sigmoid stack spreads them over
        three or more.
    vanishing_min_layers: at least this many layers (3) with a gradient: with two, "first" and
        "last" are the input and the output layer, whose ratios differ by design.
    dead_fraction: a layer whose last measured dead-unit fraction is at or above this (0.5) has
        lost most of its capacity; a healthy ReLU net keeps a few to ~20 % dead.
    """

    no_gradient_norm: float = 1e-12
    explode_growth: float = 10.0
    vanishing_ratio: float = 1e-2
    vanishing_min_layers: int = 3
    dead_fraction: float = 0.5


def layer_metric_names(names: Sequence[str]) -> list[str]:
    """The per-layer metrics among a run's metric names (what a store reader fetches)."""
    return [n for n in names if n.startswith(PREFIX)]


def layer_series(metrics: Mapping[str, Series], signal: str) -> dict[str, Series]:
    """Layer -> its series of ``signal``, for the layers that have rows of it."""
    out = {}
    for name, series in metrics.items():
        parsed = parse_metric(name)
        if parsed is not None and parsed[1] == signal and series.value.size:
            out[parsed[0]] = series
    return out


def _natural(name: str) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def layer_order(layers: Sequence[str], summary: Mapping[str, Any]) -> list[str]:
    """``layers`` first to last: the model's order the run recorded (``summary["layers"]``),
    else by name with numbers compared as numbers (``features.10`` after ``features.9``)."""
    known = summary.get("layers")
    if isinstance(known, list):
        rank = {n: i for i, n in enumerate(known)}
        return sorted(layers, key=lambda n: (rank.get(n, len(rank)), _natural(n)))
    return sorted(layers, key=_natural)


def _names(layers: Sequence[str], most: int = 3) -> str:
    shown = ", ".join(f"`{n}`" for n in layers[:most])
    return shown + (f" and {len(layers) - most} more" if len(layers) > most else "")


def check_no_gradient(metrics: Mapping[str, Series], summary: Mapping[str, Any],
                      th: LayerThresholds) -> Finding | None:
    """Layers with a gradient norm of (about) 0 at every measurement while another layer's is
    not; layers the spec froze on purpose (``summary["frozen_layers"]``) are left out."""
    grads = layer_series(metrics, "grad_norm")
    intended = set(summary.get("frozen_layers") or [])
    peak = {n: float(np.nanmax(np.abs(s.value))) if np.isfinite(s.value).any() else math.nan
            for n, s in grads.items()}
    learning = [n for n, v in peak.items() if v > th.no_gradient_norm]
    none = [n for n in layer_order(list(peak), summary)
            if peak[n] <= th.no_gradient_norm and n not in intended]
    if not none or not learning:
        return None
    other = max(learning, key=lambda n: peak[n])
    they = "it is" if len(none) == 1 else "they are"
    dead = layer_series(metrics, "dead_frac")
    if all(n in dead and S.last(dead[n]) >= 1.0 for n in none):  # the cause is then upstream
        they = "every unit of " + ("it" if len(none) == 1 else "them") + " is dead, or " + they
    n_meas = int(grads[none[0]].value.size)
    msg = (f"no gradient reaches {_names(none)} ({they} detached or frozen): a gradient norm of "
           f"0 at all {n_meas} measurements, while `{other}`'s reaches {peak[other]:.3g}")
    return Finding("no_gradient", msg, None, None,
                   {"layers": float(len(none)), "other_grad_norm": peak[other]})


def check_exploding_gradients(metrics: Mapping[str, Series], status: str,
                              summary: Mapping[str, Any], th: LayerThresholds,
                              exploded: bool = False) -> Finding | None:
    """In a run that diverged (or whose loss exploded: ``exploded``), the layer whose gradient
    norm grew the most from its first measurement to its peak (a non-finite norm counts as
    infinite growth), when that growth is >= ``explode_growth``."""
    step = summary.get("diverged_at_step")
    if status != "diverged" and step is None and not exploded:
        return None
    best: tuple[float, str, Series, int] | None = None
    for layer, s in layer_series(metrics, "grad_norm").items():
        if s.value.size < 2 or not (np.isfinite(s.value[0]) and s.value[0] > 0):
            continue
        last = int(np.flatnonzero(~np.isfinite(s.value))[0]) if not np.isfinite(s.value).all() \
            else int(np.argmax(s.value[1:]) + 1)
        growth = math.inf if not np.isfinite(s.value[last]) else float(s.value[last] / s.value[0])
        if best is None or growth > best[0]:
            best = (growth, layer, s, last)
    if best is None or best[0] < th.explode_growth:
        return None
    growth, layer, s, i = best
    if status == "diverged" or step is not None:
        when = "before the divergence" + (f" at step {int(step)}" if isinstance(step, int | float) else "")
    else:
        when = "as the loss explodes"
    rise = (f"became {s.value[i]}" if not math.isfinite(growth) else
            f"rose {s.value[0]:.3g} -> {s.value[i]:.3g} ({growth:.3g}x)")
    msg = (f"exploding gradients in `{layer}` {when}: its gradient norm "
           f"{rise} between {at(s, s.step[0])} and {at(s, s.step[i])}")
    return Finding("exploding_gradients", msg, int(s.step[i]), S.epoch_at(s, s.step[i]),
                   {"growth": growth, "first_grad_norm": float(s.value[0]),
                    "last_grad_norm": float(s.value[i])})


def check_vanishing(metrics: Mapping[str, Series], summary: Mapping[str, Any],
                    th: LayerThresholds) -> Finding | None:
    """The median update ratio (over measurements) of the first third of the layers that get a
    gradient, against the last third's: below ``vanishing_ratio`` of it is vanishing."""
    ratios = layer_series(metrics, "update_ratio")
    grads = layer_series(metrics, "grad_norm")
    median = {}
    for layer, s in ratios.items():
        f = S.finite(s).value
        g = grads.get(layer)
        if f.size and (g is None or np.nanmax(g.value) > th.no_gradient_norm) and np.median(f) > 0:
            median[layer] = float(np.median(f))
    order = layer_order(list(median), summary)
    if len(order) < th.vanishing_min_layers:
        return None
    k = max(1, len(order) // 3)
    first, last = order[:k], order[-k:]
    low = float(np.exp(np.mean(np.log([median[n] for n in first]))))
    high = float(np.exp(np.mean(np.log([median[n] for n in last]))))
    if low >= th.vanishing_ratio * high:
        return None
    msg = (f"vanishing gradients: the first layers' update ratio is {low:.1g}, the last layers' "
           f"{high:.1g} ({_names(first, 2)} vs {_names(last, 2)}): the first layers barely learn")
    return Finding("vanishing_gradients", msg, None, None,
                   {"first_update_ratio": low, "last_update_ratio": high, "ratio": low / high})


def check_dead_units(metrics: Mapping[str, Series], summary: Mapping[str, Any],
                     th: LayerThresholds) -> Finding | None:
    """Layers whose last measured dead-unit fraction is >= ``dead_fraction``, worst first."""
    dead = {n: S.finite(s) for n, s in layer_series(metrics, "dead_frac").items()}
    worst = sorted(((float(s.value[-1]), n) for n, s in dead.items()
                    if s.value.size and s.value[-1] >= th.dead_fraction), reverse=True)
    if not worst:
        return None
    frac, layer = worst[0]
    s = dead[layer]
    others = [n for _, n in worst[1:]]
    more = f"; also {_names(others)}" if others else ""
    msg = (f"{pct(frac)} of `{layer}`'s units are dead (its ReLU outputs 0 on every probe "
           f"example at {at(s, s.step[-1])}; {pct(float(s.value[0]))} at the start){more}")
    return Finding("dead_units", msg, int(s.step[-1]), S.epoch_at(s, s.step[-1]),
                   {"dead_fraction": frac, "initial_dead_fraction": float(s.value[0]),
                    "layers": float(len(worst))})


def layer_findings(metrics: Mapping[str, Series], status: str, summary: Mapping[str, Any],
                   th: LayerThresholds = LayerThresholds(),  # noqa: B008 - frozen
                   exploded: bool = False) -> list[Finding]:
    """Every per-layer finding of one run (see the module doc); ``exploded``: the run's loss
    exploded (``diagnose.check_exploding``), so its gradients are judged as a diverged run's.
    Never raises."""
    if not any(name.startswith(PREFIX) for name in metrics):
        return []
    found = [check_exploding_gradients(metrics, status, summary, th, exploded),
             check_no_gradient(metrics, summary, th), check_vanishing(metrics, summary, th),
             check_dead_units(metrics, summary, th)]
    return [f for f in found if f is not None]
