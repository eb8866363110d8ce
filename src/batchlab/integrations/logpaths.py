"""Where another tool's logs should be, checked before anything heavy is imported: ``batchlab
import`` refuses a wrong path in well under a second, not after the seconds of importing torch
(which storing the runs needs) and TensorBoard's reader. The importers call the same checks, so
the Python API says the same."""

from __future__ import annotations

from pathlib import Path

from batchlab.errors import DataError

CSV_PASS = ("pass the file a CSVLogger wrote (Keras: the file given to it; Lightning: "
            "version_N/metrics.csv)")


def check_csvlog_path(path: Path) -> None:
    """DataError unless ``path`` is a file: a folder is named with the CSV files (or TensorBoard
    event files) it holds, so the user sees what to pass instead."""
    if path.is_dir():
        found = sorted(str(p) for p in path.rglob("*.csv"))
        holds = f" (it holds {', '.join(found[:3])}{', ...' if len(found) > 3 else ''})" if found else ""
        if not found and any(path.rglob("*tfevents*")):
            holds = " (of TensorBoard event files: import it with 'batchlab import tensorboard')"
        raise DataError(f"CSV log '{path}' is a folder, not a file{holds}; {CSV_PASS}, one per run.")
    if not path.is_file():
        raise DataError(f"CSV log '{path}' does not exist; {CSV_PASS}.")


def check_logdir(logdir: Path) -> list[Path]:
    """The folders under ``logdir`` that hold TensorBoard event files, sorted (a run folder before
    its sub-folders); DataError for a file, a missing folder or one without event files."""
    if logdir.is_file():
        if logdir.suffix.lower() == ".csv":
            raise DataError(f"'{logdir}' is a CSV file, not a TensorBoard log folder; import it "
                            f"with 'batchlab import csv {logdir}'.")
        raise DataError(f"'{logdir}' is a file, not a TensorBoard log folder; pass the folder "
                        f"that holds the event files ('{logdir.parent}' holds this one).")
    if not logdir.is_dir():
        raise DataError(f"TensorBoard log folder '{logdir}' does not exist; pass the folder you "
                        "gave to SummaryWriter / the TensorBoard callback (log_dir).")
    folders = sorted({p.parent for p in logdir.rglob("*tfevents*") if p.is_file()})
    if not folders:
        raise DataError(f"no TensorBoard event files (events.out.tfevents.*) under '{logdir}'; "
                        "pass the log folder that holds the runs.")
    return folders
