"""A pruned run in ls, show, the exports, the report and the analysis (sweep.prune)."""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path

import pytest
from cli_helpers import batchlab_cli, ls_overview

from batchlab.analysis import analyze_experiment
from batchlab.events import PRUNED
from batchlab.store import Store

sys.path.insert(0, str(Path(__file__).parents[1] / "report"))
from report_stores import hand_store  # noqa: E402

REASON = ("successive halving: val loss 1.5 at 480 examples seen ranks 2 of 2 configurations at "
          "rung 1 of 1 (the best 1 continue)")


@pytest.fixture
def db(tmp_path):
    """Two configurations: lr 0.1 completed after 10 steps (val acc 0.5); lr 0.01 paused at 30
    steps with a *higher* accuracy (0.9), then pruned by halving."""
    path = tmp_path / "s.db"
    store = hand_store(path, "exp", [{"batch_size": 16, "lr": 0.1, "steps": 10},
                                     {"batch_size": 16, "lr": 0.01, "steps": 30,
                                      "status": "interrupted"}])
    cut = next(r.id for r in store.runs("exp") if r.config["train"]["lr"] == 0.01)
    assert store.mark_pruned([cut], REASON) == [cut]
    store.close()
    return path


def pruned_run(path):
    with Store(path, create=False) as st:
        return next(r for r in st.runs("exp") if r.status == PRUNED)


def test_ls_counts_pruned_runs_and_lists_them(db):
    header, counts = ls_overview(db, "exp")
    assert re.search(r"completed.*diverged.*pruned.*failed", header)
    assert counts == ["2", "1", "0", "1", "0", "0", "0", "0"]
    res = batchlab_cli("ls", "exp", "--store", db)
    assert "pruned at step 30 of 30" in res.stdout
    # one label and one sentence per run; the reason in full is for 'show'
    row = next(line for line in res.stdout.splitlines() if "pruned at step" in line)
    assert re.search(r"│ pruned\s+│ Stopped early: successive halving\.\s+│$", row), row
    assert REASON not in res.stdout and "│ undertrained │" in res.stdout


def test_show_says_why_a_run_was_pruned(db):
    res = batchlab_cli("show", pruned_run(db).id, "--store", db)
    assert res.returncode == 0, res.stderr
    assert "status: pruned" in res.stdout
    text = " ".join(res.stdout.split())
    assert "diagnosis: pruned: Stopped early: successive halving." in text
    assert "- pruned: successive halving: val loss 1.5 at 480 examples seen" in text  # the evidence
    assert text.count("successive halving: val loss 1.5") == 1 and "error:" not in res.stdout


def test_exports_carry_the_status_and_the_reason(db, tmp_path):
    res = batchlab_cli("export", "exp", "-o", tmp_path / "csv", "--store", db)
    assert res.returncode == 0, res.stderr
    rows = {r["lr"]: r for r in csv.DictReader(open(tmp_path / "csv" / "runs.csv"))}
    assert rows["0.01"]["status"] == "pruned" and rows["0.01"]["error"] == REASON
    # one label and one sentence; the reason in full is the error column and the evidence
    assert rows["0.01"]["diagnosis"] == "pruned"
    assert rows["0.01"]["diagnosis_text"] == "Stopped early: successive halving."
    assert batchlab_cli("export", "exp", "-f", "json", "-o", tmp_path / "e.json",
                        "--store", db).returncode == 0
    doc = json.loads((tmp_path / "e.json").read_text())
    assert {r["status"] for r in doc["runs"]} == {"completed", "pruned"}


def test_a_pruned_configuration_is_shown_but_never_ranked_best(db, tmp_path):
    with Store(db, create=False) as st:
        analysis = analyze_experiment(st, "exp")
    groups = {g["lr"]: g for g in analysis.groups}
    assert groups[0.01]["best_val_acc_mean"] > groups[0.1]["best_val_acc_mean"]
    assert groups[0.01]["n_pruned"] == 1 and not groups[0.01]["eligible"]
    assert analysis.best["group"]["lr"] == 0.1
    found = {r.config["train"]["lr"]: [f.kind for f in r.findings] for r in analysis.runs}
    assert found[0.01][0] == "pruned" and "not_converged" not in found[0.01]
    res = batchlab_cli("report", "exp", "-o", tmp_path / "r.html", "--store", db)
    assert res.returncode == 0, res.stderr
    html = (tmp_path / "r.html").read_text()
    assert "pruned: successive halving: val loss 1.5 at 480 examples seen" in html
    assert "1 pruned" in html  # the overview's run counts


def test_the_conclusions_name_the_pruned_runs(db):
    with Store(db, create=False) as st:
        analysis = analyze_experiment(st, "exp")
    said = [c for c in analysis.conclusions if "sweep.prune" in c]
    assert said == ["1 of 2 runs stopped early by sweep.prune (shown, never ranked best; why: "
                    "each run's findings): batch 16, lr 0.01, constant."]
