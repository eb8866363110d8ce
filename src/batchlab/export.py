"""Export an experiment: runs (with their diagnosis) and every metric row, as CSV or JSON;
TensorBoard event files via ``batchlab.report.export_tensorboard``."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from batchlab.analysis import analyze_experiment
from batchlab.fserrors import DiskError, disk_error
from batchlab.jsonsafe import json_safe
from batchlab.paths import safe_name, written_whole
from batchlab.results import experiment_rows
from batchlab.store import Store

FORMATS = ("csv", "json", "tensorboard")
METRIC_COLUMNS = ("run_id", "name", "step", "value", "epoch", "examples", "wall_time")


def rows_with_diagnosis(store: Store, experiment: str) -> tuple[list[dict[str, Any]], dict]:
    """One row per run plus its diagnosis: ``diagnosis`` (one label: collapsed, pruned, ok...)
    and ``diagnosis_text`` (one sentence, each fact once); and the whole analysis as a dict,
    which holds every finding with its numbers (``runs[].findings``) and the answer."""
    analysis = analyze_experiment(store, experiment)
    verdicts = {r.run_id: r.verdict for r in analysis.runs}
    rows = experiment_rows(store, experiment)
    for row in rows:
        v = verdicts.get(row["run_id"])
        row["diagnosis"] = v.label if v else ""
        row["diagnosis_text"] = v.sentence if v else ""
    return rows, analysis.to_dict()


def _make_folder(folder: Path, target: Path, fmt: str, default: Path) -> None:
    """Make ``folder`` (and the folders above it) for the ``fmt`` export to ``target``
    (``folder`` itself, or the json file in it); DiskError, before anything is written, when a
    file stands there or above it: a file is never replaced by a folder of exports.
    ``default``: the export's default path, suggested instead."""
    for part in [folder, *folder.parents]:
        if part.exists() and not part.is_dir():
            problem = ("it is a file, and the {fmt} export writes a folder of files" if part == target
                       else f"'{part}' on its way is a file, not a folder").format(fmt=fmt)
            raise DiskError(
                f"cannot export to '{target}': {problem}; nothing was written. Pass --output a "
                f"path whose folders are folders or do not exist yet (e.g. --output {default}), "
                "or move the file away.")
        if part.is_dir():
            break  # the folders above an existing one are folders
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise disk_error(err, folder, f"making the folder '{folder}' of the {fmt} export",
                         "run the same export again") from None


@contextmanager
def _whole(path: Path) -> Iterator[IO[str]]:
    """A text file that appears at ``path`` only once fully written (a temporary file beside
    it, renamed at the end): a Ctrl-C or a full disk midway leaves the earlier file, or none,
    never a truncated one that reads as a whole export."""
    with written_whole(path) as tmp, open(tmp, "w", newline="") as f:
        yield f


def export_experiment(store: Store, experiment: str, fmt: str, output: Path | None) -> Path:
    """Write the export and return its path (a folder for csv/tensorboard, a file for json).
    Default paths are in the current folder, named from ``safe_name(experiment)``. Missing
    folders on the way are made; a file where a folder is needed is a ``DiskError`` raised
    before anything is written (a json export replaces an existing file of its name)."""
    if fmt == "tensorboard":
        from batchlab.report import export_tensorboard

        default = Path(f"{safe_name(experiment)}-tensorboard")
        out = output or default
        _make_folder(out, out, fmt, default)
        export_tensorboard(store, experiment, out)
        return out
    default = Path(f"{safe_name(experiment)}.json" if fmt == "json"
                   else f"{safe_name(experiment)}-export")
    out = output or default
    if fmt == "json":
        if out.is_dir():
            raise DiskError(f"cannot export to '{out}': it is a folder, and the json export "
                            f"writes one file; pass --output a file path (e.g. --output "
                            f"{out / default}).")
        _make_folder(out.parent, out, fmt, default)
    else:
        _make_folder(out, out, fmt, default)
    rows, analysis = rows_with_diagnosis(store, experiment)
    metrics = [(r["run_id"], name, s) for r in rows
               for name, s in store.metrics(r["run_id"]).items()]
    if fmt == "json":
        doc = {"experiment": experiment, "runs": rows, "analysis": analysis, "metrics": [
            {"run_id": rid, "name": name, "step": s.step.tolist(), "value": s.value.tolist(),
             "epoch": s.epoch.tolist(), "examples": s.examples.tolist(),
             "wall_time": s.wall_time.tolist()} for rid, name, s in metrics]}
        with _whole(out) as f:
            f.write(json.dumps(json_safe(doc), indent=1, default=str, allow_nan=False))
        return out
    with _whole(out / "runs.csv") as f:
        writer = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
        writer.writeheader()
        writer.writerows(rows)
    with _whole(out / "metrics.csv") as f:
        writer = csv.writer(f)
        writer.writerow(METRIC_COLUMNS)
        for rid, name, s in metrics:
            writer.writerows(zip([rid] * len(s.step), [name] * len(s.step), s.step.tolist(),
                                 map(repr, s.value.tolist()), s.epoch.tolist(),
                                 s.examples.tolist(), s.wall_time.tolist(), strict=True))
    return out
