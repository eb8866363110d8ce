"""The diagnosis part of the judgement bench: every ground-truth run (trained by the plain
loop) diagnosed by batchlab as one experiment per case, as the report does, and each run's
labels checked against the rules its own numbers imply (``judgement_rules.check_diagnosis``,
which shares no code with ``batchlab.analysis``).

Not part of batchlab and not a test module.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from _bench_space import Case
from _bench_truth import data_of

SERIES = ("step", "value", "epoch", "examples", "wall_time")


def to_record(case: Case, i: int, row: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """A plain-loop run as a stored batchlab run: its config, summary and series (epochs and
    examples from the step; no wall time, which the rules do not read)."""
    from batchlab.store import RunRecord, Series

    d = data_of(case)
    per_epoch = len(d.y_train) // case.batch_size
    series = {}
    for name, s in row["series"].items():
        if not s["step"]:
            continue
        step = np.asarray(s["step"], dtype=float)
        value = np.asarray([math.nan if v is None else v for v in s["value"]], dtype=float)
        series[name] = Series(step, value, step / per_epoch, step * case.batch_size, np.zeros_like(step))
    config = {"train": {"lr": row["lr"], "batch_size": case.batch_size, "seed": row["seed"],
                        "optimizer": case.optimizer, "steps": case.steps,
                        "schedule": {"name": case.schedule}}}
    final = None if row["diverged"] else row["final"]
    summary: dict[str, Any] = {"num_classes": d.classes or None, "final_val_loss": row["val_loss"]}
    if not d.regression:
        summary["final_val_acc"] = final
    status = "diverged" if row["diverged"] else "completed"
    record = RunRecord(f"run{i}", status, config, {}, 0.0, None, None, None, None, None, 0, 1, None,
                       summary, {"train.lr": row["lr"], "train.seed": row["seed"]})
    return record, series


def judge_diagnosis(case: Case, entry: dict[str, Any]) -> dict[str, Any]:
    """Diagnose the case's ground-truth runs as one experiment; check each run's labels."""
    from judgement_rules import check_diagnosis

    from batchlab.analysis.experiment import analyze_runs

    d = data_of(case)
    runs = [to_record(case, i, r) for i, r in enumerate(entry["runs"])]
    analysis = analyze_runs(runs, case.name)
    group = (analysis.best or {}).get("group") or {}
    eligible = len([g for g in analysis.groups if g.get("best_val_acc_mean") is not None])
    best = group.get("best_val_acc_mean") if eligible >= 2 else None
    noise = group.get("best_val_acc_std")
    # a regression has no accuracy: its runs are judged against the grid's best val loss
    # (the ground truth's score is minus the final MSE), with the grid's seed noise
    best_loss = -entry["summary"]["best"] if d.regression else None
    if d.regression:
        noise = entry["summary"]["noise"]
    labels: dict[str, int] = {}
    violations = []
    for (record, series), a in zip(runs, analysis.runs, strict=True):
        for f in a.findings:
            labels[f.kind] = labels.get(f.kind, 0) + 1
        for v in check_diagnosis(series, a.findings, best, d.classes or None, sweep_noise=noise,
                                 sweep_best_val_loss=best_loss):
            violations.append(f"lr {record.point['train.lr']:.3g} seed {record.point['train.seed']}: {v}")
    return {"case": case.name, "runs": len(runs), "labels": labels, "violations": violations}


def print_diagnosis(results: list[dict[str, Any]]) -> bool:
    """Print each case's labels and violations; True when there is none."""
    print("\n== diagnosis of every ground-truth run, checked against the rules its own numbers imply")
    total = sum(r["runs"] for r in results)
    bad = sum(len(r["violations"]) for r in results)
    for r in results:
        labels = ", ".join(f"{k} {n}" for k, n in sorted(r["labels"].items()))
        print(f"{r['case']:58} {r['runs']:3d} runs: {labels}; violations: {len(r['violations'])}")
        for v in r["violations"]:
            print(f"    {v}")
    print(f"  {'PASS' if bad == 0 else 'FAIL'}  rule violations: {bad} over {total} runs")
    return bad == 0
