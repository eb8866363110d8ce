"""Plot data: pure functions from the store to plain arrays and dicts (no drawing here).

``load_runs`` reads every stored metric of an experiment's runs; ``group_runs`` folds runs that
differ only in ``train.seed`` into one group with mean and std per step (a single run is a group
of one, so every figure draws groups); ``heatmaps`` tabulates best/final validation accuracy over
LR x batch size per facet. A facet is what else the sweep varied (the schedule, any other swept
field), so figures never overlay runs that differ in something colour and dash cannot show.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from batchlab.events import DIVERGED, PRUNED
from batchlab.report.series import (
    VIEWS,
    align,
    envelope_index,
    running_mean,
    smoothing_window,
    stride_index,
)
from batchlab.results import applied_lr, schedule_label
from batchlab.store import RunRecord, Series, Store

# Sweep keys that colour/dash (lr, batch) or grouping (seed) already show, or the schedule label.
SHOWN = ("train.lr", "train.batch_size", "train.seed")
EVAL_METRICS = ("val_loss", "val_acc", "train_eval_loss", "train_acc", "samples_per_s")


@dataclass(frozen=True)
class RunData:
    """One run with its stored series (full length, as read). ``lr`` is the LR applied (after
    the scaling rule), which colours every figure; ``spec_lr`` the LR written in the spec."""

    run_id: str
    status: str
    lr: float | None
    spec_lr: float | None
    batch_size: int | None
    seed: int | None
    facet: str
    group: str
    series: dict[str, Series]
    record: RunRecord


@dataclass(frozen=True)
class Curve:
    """A metric of a group, thinned for drawing: x per view, mean over seeds, std or None."""

    x: dict[str, np.ndarray]
    y: np.ndarray
    std: np.ndarray | None = None


@dataclass(frozen=True)
class Group:
    """Runs that differ only in their seed. ``curves`` names: the stored metrics, plus
    ``train_loss_smooth`` (running mean of each seed's full train loss, then averaged)."""

    key: str
    facet: str
    lr: float | None  # applied (colour)
    spec_lr: float | None  # as in the spec (grid rows)
    batch_size: int | None
    run_ids: tuple[str, ...]
    statuses: tuple[str, ...]
    curves: dict[str, Curve] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.run_ids)

    @property
    def n_diverged(self) -> int:
        return sum(s == DIVERGED for s in self.statuses)

    @property
    def n_pruned(self) -> int:
        """Runs stopped early by sweep.prune: their curves end where they were stopped."""
        return sum(s == PRUNED for s in self.statuses)


@dataclass(frozen=True)
class Heatmap:
    """``metric`` per (spec LR row, batch column) of one facet: mean, std and counts over
    seeds, and the LR each cell's runs applied (NaN where none ran; differs from the row's LR
    under a scaling rule)."""

    facet: str
    metric: str
    lrs: list[float]
    batch_sizes: list[int]
    mean: np.ndarray
    std: np.ndarray
    n: np.ndarray
    n_diverged: np.ndarray
    applied: np.ndarray

    @property
    def scaled(self) -> bool:
        """Whether any cell applied another LR than its row's (a scaling rule is on)."""
        rows = np.array(self.lrs, dtype=float)[:, None]
        ok = np.isfinite(self.applied)
        return bool(ok.any() and not np.allclose(self.applied[ok], np.broadcast_to(rows, ok.shape)[ok]))


def extra_swept(key: str) -> bool:
    """A swept field that colour, dash, seed grouping or the schedule label do not show."""
    return key not in SHOWN and not key.startswith("train.schedule")


FACET_SEP = " · "  # between the schedule label and other swept fields ('step(20ep, x0.1)' has commas)


def facet_label(record: RunRecord) -> str:
    """The schedule label plus any other swept field that is not lr, batch size or seed:
    'constant · momentum=0.9'."""
    train = record.config.get("train", {})
    parts = [schedule_label(train)]
    for key, value in record.point.items():
        if extra_swept(key):
            parts.append(f"{key.rsplit('.', 1)[-1]}={value}")
    return FACET_SEP.join(parts)


def facet_title(facet: str) -> str:
    """'schedule: constant', and 'schedule: constant · momentum=0.9' when the sweep varied
    another field too (named as itself, never as a schedule)."""
    return f"schedule: {facet}"


def slug(text: str) -> str:
    """A file-name-safe version of a label: 'step(20ep, x0.1)' -> 'step-20ep-x0.1'."""
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-")[:48] or "all"


def group_key(config: dict[str, Any]) -> str:
    """The resolved config without its seed (and thread count, which changes no number)."""
    train = {k: v for k, v in config.get("train", {}).items() if k not in ("seed", "threads")}
    return json.dumps({**config, "train": train}, sort_keys=True, default=str)


def load_runs(store: Store, experiment: str) -> list[RunData]:
    """Every run of ``experiment`` in sweep order with all its metrics (StoreError if unknown)."""
    out = []
    for rec in store.runs(experiment):
        train = rec.config.get("train", {})
        out.append(RunData(
            run_id=rec.id, status=rec.status, lr=applied_lr(rec), spec_lr=_number(train.get("lr")),
            batch_size=train.get("batch_size"),
            seed=train.get("seed"), facet=facet_label(rec), group=group_key(rec.config),
            series=store.metrics(rec.id), record=rec,
        ))
    return out


def _number(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def facets(runs: Sequence[RunData]) -> list[str]:
    """Facet labels in sweep order."""
    return list(dict.fromkeys(r.facet for r in runs))


def _views(s: Series) -> dict[str, np.ndarray]:
    return {"epoch": s.epoch, "step": s.step.astype(float), "examples": s.examples.astype(float),
            "wall_time": s.wall_time}


def _curve(members: Sequence[RunData], name: str) -> dict[str, Curve]:
    """Aligned, thinned curve(s) of metric ``name``; train_loss also yields its smoothed twin."""
    present = [r.series[name] for r in members if name in r.series and r.series[name].step.size]
    if not present:
        return {}
    columns = [{"value": s.value, **_views(s)} for s in present]
    if name == "train_loss":
        for s, cols in zip(present, columns, strict=True):
            cols["smooth"] = running_mean(s.value, smoothing_window(s.value.size))
    _, mean, std = align([s.step for s in present], columns)
    # x views are the same for every seed except wall time, which is averaged
    x = {v: mean[v] for v in VIEWS}
    raw_idx = envelope_index(mean["value"])
    raw_std = std["value"][raw_idx] if std["value"] is not None else None
    out = {name: Curve({v: a[raw_idx] for v, a in x.items()}, mean["value"][raw_idx],
                       None if name == "train_loss" else raw_std)}
    if name == "train_loss":
        idx = stride_index(mean["smooth"].size)
        sstd = std["smooth"][idx] if std["smooth"] is not None else None
        out["train_loss_smooth"] = Curve({v: a[idx] for v, a in x.items()}, mean["smooth"][idx], sstd)
    return out


def group_runs(runs: Sequence[RunData]) -> list[Group]:
    """Fold seeds into groups (sweep order); each group carries thinned curves of every metric."""
    members: dict[str, list[RunData]] = {}
    for r in runs:
        members.setdefault(r.group, []).append(r)
    groups = []
    for key, rs in members.items():
        names = sorted({n for r in rs for n in r.series})
        curves: dict[str, Curve] = {}
        for name in names:
            curves.update(_curve(rs, name))
        first = rs[0]
        groups.append(Group(key, first.facet, first.lr, first.spec_lr, first.batch_size,
                            tuple(r.run_id for r in rs), tuple(r.status for r in rs), curves))
    return groups


def run_scores(run: RunData) -> dict[str, float]:
    """Best and final validation accuracy and loss from the stored curves (NaN when there is
    none; the best loss is the lowest).

    A diverged run has no final model, so its final values are NaN; its best is what it
    reached before diverging.
    """
    out = {}
    for metric, best_of in (("val_acc", np.max), ("val_loss", np.min)):
        s = run.series.get(metric)
        vals = s.value[np.isfinite(s.value)] if s is not None else np.array([])
        out[f"best_{metric}"] = float(best_of(vals)) if vals.size else float("nan")
        out[f"final_{metric}"] = float(vals[-1]) if vals.size and run.status != DIVERGED else float("nan")
    return out


def is_regression(runs: Sequence[RunData]) -> bool:
    """Whether the runs evaluated a validation loss but never an accuracy (a regression;
    runs that have not evaluated yet say nothing either way)."""
    def finite(metric: str) -> bool:
        return any(np.isfinite(r.series[metric].value).any() for r in runs if metric in r.series)
    return finite("val_loss") and not finite("val_acc")


def heatmaps(runs: Sequence[RunData], metric: str) -> list[Heatmap]:
    """One spec-LR x batch-size table of ``metric`` (a ``run_scores`` key) per
    facet: rows are the LRs the user swept; each cell also records the LR its runs applied."""
    out = []
    for facet in facets(runs):
        rs = [r for r in runs if r.facet == facet]
        lrs = sorted({r.spec_lr for r in rs if r.spec_lr is not None}, reverse=True)  # large on top
        bss = sorted({r.batch_size for r in rs if r.batch_size is not None})
        cells: dict[tuple[int, int], list[float]] = {}
        div = np.zeros((len(lrs), len(bss)), dtype=int)
        applied = np.full(div.shape, np.nan)
        for r in rs:
            if r.spec_lr is None or r.batch_size is None:
                continue
            ij = (lrs.index(r.spec_lr), bss.index(r.batch_size))
            applied[ij] = np.nan if r.lr is None else r.lr
            cells.setdefault(ij, []).append(run_scores(r)[metric])
            div[ij] += r.status == DIVERGED
        mean = np.full(div.shape, np.nan)
        std = np.full(div.shape, np.nan)
        n = np.zeros(div.shape, dtype=int)
        for ij, vals in cells.items():
            v = np.array([x for x in vals if np.isfinite(x)])
            n[ij] = v.size
            if v.size:
                mean[ij], std[ij] = v.mean(), v.std()
        out.append(Heatmap(facet, metric, lrs, bss, mean, std, n, div, applied))
    return out


# ------------------------------------------------------------------------------ to target
TARGET_CLOCKS = ("steps", "examples", "wall_time")


@dataclass(frozen=True)
class TargetData:
    """Cost to reach the target per batch size (best LR each), on three clocks, with the
    spread over seeds where the analysis gives one, and the critical-batch fit if any."""

    target: float | None
    batch_sizes: np.ndarray
    values: dict[str, np.ndarray]
    errors: dict[str, np.ndarray | None]
    fit: tuple[float, float, float] | None  # (s_min, e_min, b_crit)


_HIT_FIELD = {"steps": "step", "examples": "examples", "wall_time": "wall_time"}


def _hit_spread(analysis: Any, label: str | None, clock: str) -> float:
    """Std over seeds of the cost to target of the group called ``label`` (NaN for < 2 hits)."""
    group = next((g for g in analysis.groups if label is not None and g["label"] == label), None)
    if group is None:
        return float("nan")
    ids = set(group["run_ids"])
    vals = [getattr(r.hit, _HIT_FIELD[clock]) for r in analysis.runs if r.run_id in ids and r.hit]
    return float(np.std(vals, ddof=1)) if len(vals) > 1 else float("nan")


def target_data(analysis: Any) -> TargetData:
    """Arrays from an ``ExperimentAnalysis``: ``to_target_by_batch`` rows (the fastest
    configuration per batch size, means over seeds), the std over that configuration's seeds
    from the runs' target hits, and the ``critical_batch`` fit."""
    rows = sorted(analysis.to_target_by_batch, key=lambda r: r["batch_size"])
    values, errors = {}, {}
    for clock in TARGET_CLOCKS:
        values[clock] = np.array([np.nan if r.get(clock) is None else float(r[clock]) for r in rows])
        err = np.array([_hit_spread(analysis, r.get(f"{clock}_label"), clock) for r in rows])
        errors[clock] = err if np.isfinite(err).any() else None
    fit = analysis.critical_batch
    return TargetData(analysis.target, np.array([float(r["batch_size"]) for r in rows]), values,
                      errors, (fit.s_min, fit.e_min, fit.b_crit) if fit is not None else None)
