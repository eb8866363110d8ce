"""Import Keras ``CSVLogger`` files (one run per file): a row per epoch with ``epoch``, ``loss``,
``accuracy``, ``val_loss``, ``val_accuracy`` and ``lr``/``learning_rate`` (any other column is
kept under its own name). Values land at the end of their epoch (see ``write_run``)."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from batchlab.errors import DataError
from batchlab.integrations.importing import Point, config_from_name, metric_for, write_run
from batchlab.store import Store
from batchlab.track import TrackedRun


def _number(text: str, path: Path, line: int, column: str) -> float:
    try:
        return float(text)  # 'nan' and 'inf' parse too: a diverged epoch is kept as such
    except ValueError:
        raise DataError(f"'{path}' line {line}: column '{column}' = {text!r} is not a number; "
                        "pass the CSV file Keras's CSVLogger wrote (one number per cell).") from None


def read_csvlog(path: Path) -> dict[str, list[Point]]:
    """{column: points at their 0-based epoch} from one CSVLogger file."""
    if not path.is_file():
        raise DataError(f"CSV log '{path}' does not exist; pass the file given to keras.callbacks.CSVLogger.")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "epoch" not in rows[0]:
        raise DataError(f"'{path}' is not a Keras CSVLogger file: it needs a header with an 'epoch' "
                        "column and one row per epoch (epoch,loss,accuracy,val_loss,...).")
    out: dict[str, list[Point]] = {}
    for line, row in enumerate(rows, start=2):
        epoch = _number(row["epoch"], path, line, "epoch")
        if not math.isfinite(epoch) or epoch < 0 or not epoch.is_integer():
            raise DataError(f"'{path}' line {line}: epoch {row['epoch']!r} must be an integer >= 0.")
        for column, text in row.items():
            if column != "epoch" and column is not None and text not in (None, ""):
                out.setdefault(column, []).append(Point(int(epoch), _number(text, path, line, column)))
    return out


def import_csvlogs(store: Store, paths: list[Path], experiment: str, *, mapping: dict[str, str],
                   overrides: dict[str, Any]) -> list[TrackedRun]:
    """Import each file as one run of ``experiment`` (re-importing a file replaces its run).
    Every file is read before anything is stored, so a bad file stores nothing."""
    read = [(path, read_csvlog(path)) for path in paths]
    runs = []
    for path, columns in read:
        series: dict[str, list[Point]] = {}
        for column, points in columns.items():
            if (metric := metric_for(column, mapping)) is not None:
                series.setdefault(metric, []).extend(points)
        config = config_from_name(path.stem) | overrides
        runs.append(write_run(store, experiment, f"csv:{path.resolve()}", config, series, unit="epoch"))
    return runs
