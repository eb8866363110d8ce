"""Export an experiment: runs (with their diagnosis) and every metric row, as CSV or JSON;
TensorBoard event files via ``batchlab.report.export_tensorboard``."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from batchlab.analysis import analyze_experiment
from batchlab.jsonsafe import json_safe
from batchlab.paths import safe_name
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


def export_experiment(store: Store, experiment: str, fmt: str, output: Path | None) -> Path:
    """Write the export and return its path (a folder for csv/tensorboard, a file for json).
    Default paths are in the current folder, named from ``safe_name(experiment)``."""
    if fmt == "tensorboard":
        from batchlab.report import export_tensorboard

        out = output or Path(f"{safe_name(experiment)}-tensorboard")
        export_tensorboard(store, experiment, out)
        return out
    rows, analysis = rows_with_diagnosis(store, experiment)
    metrics = [(r["run_id"], name, s) for r in rows
               for name, s in store.metrics(r["run_id"]).items()]
    if fmt == "json":
        out = output or Path(f"{safe_name(experiment)}.json")
        doc = {"experiment": experiment, "runs": rows, "analysis": analysis, "metrics": [
            {"run_id": rid, "name": name, "step": s.step.tolist(), "value": s.value.tolist(),
             "epoch": s.epoch.tolist(), "examples": s.examples.tolist(),
             "wall_time": s.wall_time.tolist()} for rid, name, s in metrics]}
        out.write_text(json.dumps(json_safe(doc), indent=1, default=str, allow_nan=False))
        return out
    out = output or Path(f"{safe_name(experiment)}-export")
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "runs.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
        writer.writeheader()
        writer.writerows(rows)
    with open(out / "metrics.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(METRIC_COLUMNS)
        for rid, name, s in metrics:
            writer.writerows(zip([rid] * len(s.step), [name] * len(s.step), s.step.tolist(),
                                 map(repr, s.value.tolist()), s.epoch.tolist(),
                                 s.examples.tolist(), s.wall_time.tolist(), strict=True))
    return out
