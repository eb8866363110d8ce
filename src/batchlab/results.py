"""Plain tables of stored runs: one row per run, for the CLI table and the CSV/JSON export."""

from __future__ import annotations

import math
from typing import Any

from batchlab.errors import BatchlabError
from batchlab.store import RunRecord, Store
from batchlab.train.scaling import scaled_lr

SUMMARY_COLUMNS = (
    "final_train_loss", "final_train_acc", "final_val_loss", "final_val_acc",
    "best_val_acc", "best_val_acc_epoch", "best_val_loss", "effective_lr", "samples_per_s",
)


def schedule_label(train: dict[str, Any]) -> str:
    """A short human name of a run's schedule, e.g. 'step(10ep, x0.1)+warmup 5'."""
    s = train.get("schedule", {})
    name = s.get("name", "constant")
    unit = "ep" if s.get("unit", "epoch") == "epoch" else "st"
    label = {
        "step": f"step({s.get('step_size')}{unit}, x{s.get('gamma')})",
        "multistep": f"multistep({','.join(map(str, s.get('milestones', [])))}{unit}, x{s.get('gamma')})",
        "exponential": f"exp(x{s.get('gamma')}/{unit})",
    }.get(name, name)
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
    for key in SUMMARY_COLUMNS:
        row[key] = record.summary.get(key)
    row["error"] = record.error
    return row


def experiment_rows(store: Store, experiment: str) -> list[dict[str, Any]]:
    return [run_row(r) for r in store.runs(experiment)]
