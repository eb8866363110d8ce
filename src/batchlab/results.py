"""Plain tables of stored runs: one row per run, for the CLI table and the CSV/JSON export."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from batchlab.applicable import decided_off
from batchlab.errors import BatchlabError
from batchlab.events import INTERRUPTED, RUNNING
from batchlab.store import RunRecord, Series, Store
from batchlab.train.scaling import scaled_lr

SUMMARY_COLUMNS = (
    "final_train_loss", "final_train_acc", "final_val_loss", "final_val_acc",
    "best_val_acc", "best_val_acc_epoch", "best_val_loss", "effective_lr", "samples_per_s",
)


def schedule_label(train: dict[str, Any]) -> str:
    """A short human name of a run's schedule, e.g. 'step(10ep, x0.1)+warmup 5st'. A setting
    the config does not hold (a tracked run's ``{"name": "step"}``) is left out, not shown as
    None: 'step'."""
    s = train.get("schedule", {})
    name = s.get("name", "constant")
    unit = "ep" if s.get("unit", "epoch") == "epoch" else "st"
    gamma = f"x{s['gamma']}" if s.get("gamma") is not None else None
    milestones = ",".join(map(str, s.get("milestones") or []))
    args = {
        "step": [f"{s['step_size']}{unit}" if s.get("step_size") is not None else None, gamma],
        "multistep": [f"{milestones}{unit}" if milestones else None, gamma],
        "exponential": [f"{gamma}/{unit}" if gamma else None],
    }.get(name, [])
    shown = [a for a in args if a]
    label = "exp" if name == "exponential" else name
    if shown:
        label += f"({', '.join(shown)})"
    if s.get("warmup"):
        label += f"+warmup {s['warmup']}{'ep' if s.get('warmup_unit') == 'epoch' else 'st'}"
    return label


def scaled_config_lr(train: dict[str, Any], batch_size: Any = None) -> float | None:
    """The LR a stored ``train`` config applies at ``batch_size`` (default: its own): its
    ``lr`` moved by ``scale_lr`` from ``base_batch_size``. None without a numeric LR or for a
    config no run could train with."""
    lr = train.get("lr")
    batch = train.get("batch_size") if batch_size is None else batch_size
    if not isinstance(lr, int | float) or isinstance(lr, bool) or not isinstance(batch, int):
        return None
    try:
        return scaled_lr(float(lr), batch, train.get("scale_lr", "none"), train.get("base_batch_size", 32))
    except (ValueError, BatchlabError):
        return None


def applied_lr(record: RunRecord) -> float | None:
    """The LR the run's optimizer actually started from: the stored ``effective_lr`` (after
    the scaling rule), or, for a run not trained yet, ``scaled_config_lr`` of its config."""
    stored = record.summary.get("effective_lr")
    if isinstance(stored, int | float) and math.isfinite(stored):
        return float(stored)
    return scaled_config_lr(record.config.get("train", {}))


def run_row(record: RunRecord) -> dict[str, Any]:
    """Flat row: id, status, the knobs people compare, summary metrics, wall time, error."""
    cfg = record.config
    train, model, data = cfg.get("train", {}), cfg.get("model", {}), cfg.get("data", {})
    row: dict[str, Any] = {
        "run_id": record.id,
        "status": record.status,
        "data": data.get("name"),
        "model": model.get("name"),
        "optimizer": train.get("optimizer"),
        "batch_size": train.get("batch_size"),
        "lr": train.get("lr"),
        "scale_lr": train.get("scale_lr"),
        "schedule": schedule_label(train),
        "seed": train.get("seed"),
        "steps": record.steps,
        "wall_time_s": record.wall_time,
    }
    for key, value in record.point.items():  # swept fields without a column of their own
        if key.rsplit(".", 1)[-1] not in row and key != "train.schedule.name":
            row[key] = value
    for section in ("model", "data"):  # runs of one experiment differ there: their labels
        if section in record.point:
            row[section] = record.point[section]
    for key in SUMMARY_COLUMNS:
        row[key] = record.summary.get(key)
    if isinstance(row["best_val_acc"], int | float) and row["best_val_acc"] < 0:
        row["best_val_acc"] = None  # the -1.0 placeholder older versions stored before an evaluation
    row["error"] = record.error
    return row


def rows_are_regression(rows: Sequence[Mapping[str, Any]]) -> bool:
    """Whether rows of ``run_row``/``experiment_rows`` are compared by validation loss: the
    analysis's choice (``analysis.metric.experiment_metric``: loss when no run has an accuracy
    but one has a loss), read from their best (else final) columns."""
    from types import SimpleNamespace

    from batchlab.analysis.metric import LOSS, experiment_metric

    def value(row: Mapping[str, Any], key: str) -> float:
        for v in (row.get(f"best_{key}"), row.get(f"final_{key}")):
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
                return float(v)
        return math.nan

    scored = [SimpleNamespace(best_val_acc=value(r, "val_acc"), best_val_loss=value(r, "val_loss"))
              for r in rows]
    return experiment_metric(scored) is LOSS


def experiment_rows(store: Store, experiment: str) -> list[dict[str, Any]]:
    """``run_row`` of each run of ``experiment``; a run still training or interrupted (its
    summary is written when it ends) gets its validation columns so far from its stored rows,
    as its diagnosis reads them (``ls`` showed '-' beside a diagnosis quoting 97.5%)."""
    rows = []
    for record in store.runs(experiment):
        row = run_row(record)
        if record.status in (RUNNING, INTERRUPTED) and not record.summary:
            row.update(_so_far(store.metrics(record.id, ["val_acc", "val_loss"])))
        rows.append(row)
    return rows


def _so_far(metrics: dict[str, Series]) -> dict[str, float]:
    """The last and best finite validation accuracy and loss in ``metrics``, as summary columns."""
    out: dict[str, float] = {}
    for name, best in (("val_acc", max), ("val_loss", min)):
        values = [float(v) for v in metrics[name].value if math.isfinite(v)]
        if values:
            out[f"final_{name}"], out[f"best_{name}"] = values[-1], best(values)
    return out


# config fields the CLI tables show in columns of their own (batch, lr, seed; the schedule
# column is the schedule's label)
OWN_COLUMNS = ("train.batch_size", "train.lr", "train.seed")
MOST_EXTRA_COLUMNS = 8  # differing fields shown as columns; more are named in a caption


def config_leaves(node: Mapping[str, Any], key: Callable[[str], str] = str,
                  prefix: str = "") -> dict[str, Any]:
    """A nested config as ``{"train.weight_decay": 0.01, ...}`` (lists and empty dicts are
    leaves); ``key`` writes each part of a path (``specwrite.key`` quotes one holding a dot,
    as ``overrides.set_path`` reads it)."""
    out: dict[str, Any] = {}
    for name, value in node.items():
        if isinstance(value, Mapping) and value:
            out.update(config_leaves(value, key, f"{prefix}{key(name)}."))
        else:
            out[f"{prefix}{key(name)}"] = value
    return out


def _same(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def varying_fields(configs: Sequence[Mapping[str, Any]], key: Callable[[str], str] = str) -> list[str]:
    """The dotted paths (``config_leaves``, written with ``key``), in config order, whose values
    differ among ``configs``; a path missing from some of them differs too."""
    leaves = [config_leaves(c, key) for c in configs]
    return [path for path in dict.fromkeys(k for flat in leaves for k in flat)
            if len({_same(flat.get(path)) for flat in leaves}) > 1]


def differing_fields(records: Sequence[RunRecord]) -> list[str]:
    """The config fields (dotted paths, in config order) whose values differ among ``records``
    and that the tables' own columns do not show: not batch size, LR or seed; a schedule field
    only where runs with the same schedule label differ in it. Without them, runs that differ
    in, say, weight decay or data.limit (set with --set, or by ``batchlab next``) read the same."""
    leaves = [config_leaves(r.config) for r in records]
    labels = [schedule_label(r.config.get("train", {})) for r in records]
    out = []
    for key in varying_fields([r.config for r in records]):
        if key in OWN_COLUMNS:
            continue
        values = [_same(flat.get(key)) for flat in leaves]
        if key.startswith("train.schedule."):
            by_label: dict[str, str] = {}
            if all(by_label.setdefault(label, v) == v for label, v in zip(labels, values, strict=True)):
                continue  # the schedule column tells them apart
        out.append(key)
    return out


def _cell(value: Any) -> Any:
    """A table value: a dict or a long text as ``#`` and 6 hex digits of its hash."""
    text = _same(value) if isinstance(value, dict | list) else str(value)
    if value is None or (len(text) <= 24 and not isinstance(value, dict)):
        return value if not isinstance(value, list) else text
    return "#" + hashlib.sha256(text.encode()).hexdigest()[:6]


def with_differences(rows: list[dict[str, Any]], records: Sequence[RunRecord]) -> list[dict[str, Any]]:
    """``rows`` (``run_row`` of ``records``, in the same order) with every ``differing_fields``
    field added under its dotted path, where the row does not hold it already (a swept field);
    None (a blank, "-" in the CLI) where the field has no effect on the run, as momentum on
    adam (``applicable.decided_off``): its stored default is not a value that was tried."""
    fields = differing_fields(records)
    for row, record in zip(rows, records, strict=True):
        flat = config_leaves(record.config)
        for key in fields:
            row.setdefault(key, None if decided_off(record.config, key) else _cell(flat.get(key)))
    return rows


def extra_columns(rows: Sequence[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """The dotted keys of ``rows`` (swept and differing fields) for the CLI tables' columns,
    in order: at most ``MOST_EXTRA_COLUMNS`` shown, and the rest (for a caption naming them)."""
    keys = list(dict.fromkeys(k for r in rows for k in r if "." in k))
    return keys[:MOST_EXTRA_COLUMNS], keys[MOST_EXTRA_COLUMNS:]
