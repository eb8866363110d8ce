"""Import CSV logs (one run per file):

- Keras ``CSVLogger`` files: a row per epoch with ``epoch``, ``loss``, ``accuracy``,
  ``val_loss``, ``val_accuracy`` and ``lr``/``learning_rate``. Values land at the end of their
  epoch (see ``write_run``).
- Lightning ``CSVLogger`` files (``<save_dir>/<name>/version_N/metrics.csv``): a ``step``
  column and sparse rows (a training row, a validation row, an ``lr-SGD`` row, each filling
  only its own cells). A value logged at Lightning's step k is the (k+1)-th update's, so it is
  stored at step k + 1; the steps per epoch are the last step logged in epoch 0, plus one (the
  epoch-end validation is logged there), unless the config gives them; ``hparams.yaml`` beside
  the file gives the config (``batch_size``, ``lr``, ...), and the run folder's name too.

Any other column is kept under its own name, and the import says so.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchlab.errors import DataError
from batchlab.integrations.importing import (
    PlannedRun,
    Point,
    check_config,
    config_from_name,
    config_key,
    import_notes,
    lr_from_log,
    metrics_for,
    store_runs,
)
from batchlab.integrations.logpaths import CSV_PASS, check_csvlog_path
from batchlab.overrides import parse_value
from batchlab.store import Store
from batchlab.track import TrackedRun


@dataclass(frozen=True)
class CsvLog:
    """One file's columns as points, what their index counts ('epoch': Keras's 0-based epoch
    index, 'step': updates done) and the config the file and its folder give."""

    columns: dict[str, list[Point]]
    unit: str
    config: dict[str, Any] = field(default_factory=dict)


def _number(text: str, path: Path, line: int, column: str) -> float:
    try:
        return float(text)  # 'nan' and 'inf' parse too: a diverged epoch is kept as such
    except ValueError:
        raise DataError(f"'{path}' line {line}: column '{column}' = {text!r} is not a number; "
                        "pass the CSV file a CSVLogger (Keras or Lightning) wrote (one number "
                        "per cell).") from None


def _index(row: dict[str, Any], key: str, path: Path, line: int) -> int:
    value = _number(row[key], path, line, key)
    if not math.isfinite(value) or value < 0 or not value.is_integer():
        raise DataError(f"'{path}' line {line}: {key} {row[key]!r} must be an integer >= 0.")
    return int(value)


def _hparams(folder: Path) -> dict[str, Any]:
    """Top-level ``key: value`` scalars of Lightning's ``hparams.yaml`` in ``folder`` ({} if none)."""
    file = folder / "hparams.yaml"
    out: dict[str, Any] = {}
    if file.is_file():
        for text in file.read_text(errors="replace").splitlines():
            key, sep, value = text.partition(":")
            if sep and key and not key[0].isspace() and value.strip() and not key.startswith("#"):
                out[config_key(key.strip())] = parse_value(value.strip().strip("'\""))
    return out


def _rows(path: Path) -> list[dict[str, Any]]:
    """The rows of the CSV file at ``path`` as dicts; DataError for a folder, a missing file or
    one that is not text. A UTF-8 byte-order mark (a file saved again by Excel) is skipped, and
    a header with no comma but semicolons or tabs sets the separator (Keras's CSVLogger takes
    ``separator=``)."""
    check_csvlog_path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            text = f.read()
    except UnicodeDecodeError:
        raise DataError(f"'{path}' is not a CSV text file (its bytes are not UTF-8 text); {CSV_PASS}."
                        ) from None
    header = text.partition("\n")[0]
    separator = next((s for s in (",", ";", "\t") if s in header), ",")
    try:
        return list(csv.DictReader(io.StringIO(text, newline=""), delimiter=separator))
    except csv.Error as err:
        raise DataError(f"'{path}' could not be read as CSV ({err}); {CSV_PASS}.") from None


def read_csvlog(path: Path) -> CsvLog:
    """The points of one Keras or Lightning CSVLogger file; DataError naming what is wrong."""
    rows = _rows(path)
    if rows and {"run_id", "name", "step", "value"} <= rows[0].keys():  # batchlab export's rows
        raise DataError(f"'{path}' is batchlab's own CSV export (one row per run, metric and step), "
                        "not a CSVLogger file; to move runs between stores export them with "
                        "'batchlab export EXP --format tensorboard' and import that folder with "
                        "'batchlab import tensorboard', or copy the store file.")
    lightning = bool(rows) and "step" in rows[0]
    if not rows or not lightning and "epoch" not in rows[0]:
        raise DataError(f"'{path}' is not a CSVLogger file: it needs a header with an 'epoch' "
                        "column and one row per epoch (Keras: epoch,loss,accuracy,val_loss,...) "
                        "or a 'step' column (Lightning's metrics.csv).")
    columns: dict[str, list[Point]] = {}
    last_in_first_epoch, epochs = -1, set()
    for line, row in enumerate(rows, start=2):
        if lightning:
            at = _index(row, "step", path, line) + 1  # Lightning's step k: the (k+1)-th update
            if row.get("epoch") not in (None, ""):
                epochs.add(epoch := _index(row, "epoch", path, line))
                last_in_first_epoch = max(last_in_first_epoch, at) if epoch == 0 else last_in_first_epoch
        else:
            at = _index(row, "epoch", path, line)
        for column, text in row.items():
            # a column with no name (pandas' index, written by df.to_csv) is no metric
            if column not in ("epoch", "step", "", None) and text not in (None, ""):
                columns.setdefault(column, []).append(Point(at, _number(text, path, line, column)))
    if not lightning:
        return CsvLog(columns, "epoch")
    config = config_from_name(f"{path.parent.parent.name}/{path.parent.name}") | _hparams(path.parent)
    if len(epochs) > 1 and last_in_first_epoch > 0:
        config = {"steps_per_epoch": last_in_first_epoch} | config
    return CsvLog(columns, "step", config)


def import_csvlogs(store: Store | str | Path, paths: list[Path], experiment: str, *,
                   mapping: dict[str, str], overrides: dict[str, Any],
                   notes: list[str] | None = None) -> list[TrackedRun]:
    """Import each file as one run of ``experiment`` (re-importing a file replaces its run).
    Every file is read and checked before the store is written, or, given as a path, opened
    (created when missing): a bad file stores nothing and creates no store file. ``notes``
    gets what each import dropped, left unmapped or lacks (``import_notes``)."""
    read = [(path, read_csvlog(path)) for path in paths]
    planned = []
    for path, log in read:
        series: dict[str, list[Point]] = {}
        tags = metrics_for(log.columns, mapping)
        for column, points in log.columns.items():
            if (metric := tags[column]) is not None:
                series.setdefault(metric, []).extend(points)
        found: list[str] = []
        config = lr_from_log(config_from_name(path.stem) | log.config | overrides, series,
                             str(path), found)
        check_config(config, str(path), overrides)  # every file's, before anything is stored
        planned.append(PlannedRun(f"csv:{path.resolve()}", config, series, log.unit,
                                  notes=tuple(found + import_notes(str(path), tags, config))))
    return store_runs(store, experiment, planned, notes)
