"""batchlab.export: what an export writes, and that a cut-off one never leaves half a file."""

from __future__ import annotations

import csv
import json

import pytest

from batchlab import export
from batchlab.events import MetricRows, RunEnded, RunStarted
from batchlab.plan import plan_runs
from batchlab.spec import spec_from_dict
from batchlab.store import Store


@pytest.fixture
def store(tmp_path):
    """Two completed runs of 5 steps (no training needed)."""
    spec = spec_from_dict({"name": "exp", "model": {"name": "mymodels:make"},
                           "sweep": {"grid": {"train.batch_size": [16, 32]}}})
    runs = plan_runs(spec)
    with Store(tmp_path / "s.db") as st:
        st.add_experiment("exp", spec.model_dump(mode="json"), runs)
        for run in runs:
            st.record(RunStarted(run.run_id, 5, 0))
            st.record(MetricRows(run.run_id, [("train_loss", s, 1.0 / s, s / 5, s * 16, 0.1)
                                              for s in range(1, 6)], 5))
            st.record(RunEnded(run.run_id, "completed", 5, 1.5, {"final_val_acc": 0.8}))
        yield st


WRITER = csv.writer


class CutWriter:
    """csv.writer's stand-in that writes its first rows, then is cut off by Ctrl-C."""

    def __init__(self, f, *args, **kwargs):
        self.inner, self.calls = WRITER(f, *args, **kwargs), 0

    def writerow(self, row):
        self.inner.writerow(row)

    def writerows(self, rows):
        self.calls += 1
        if self.calls == 2:
            raise KeyboardInterrupt
        self.inner.writerows(rows)


def test_a_cut_off_export_leaves_the_earlier_files_whole_and_no_part_file(store, tmp_path, monkeypatch):
    out = export.export_experiment(store, "exp", "csv", tmp_path / "x")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert (out / "metrics.csv").read_text().count("\n") == 11  # header + 2 runs x 5 steps
    with monkeypatch.context() as m:
        m.setattr(export.csv, "writer", CutWriter)
        with pytest.raises(KeyboardInterrupt):
            export.export_experiment(store, "exp", "csv", out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # no truncated metrics.csv
    first = tmp_path / "new"
    with monkeypatch.context() as m:
        m.setattr(export.csv, "writer", CutWriter)
        with pytest.raises(KeyboardInterrupt):
            export.export_experiment(store, "exp", "csv", first)
    assert sorted(p.name for p in first.iterdir()) == ["runs.csv"]  # written whole; no metrics


def test_a_cut_off_json_export_keeps_the_earlier_file(store, tmp_path, monkeypatch):
    out = export.export_experiment(store, "exp", "json", tmp_path / "x.json")
    before = out.read_bytes()
    assert len(json.loads(before)["runs"]) == 2

    def cut(*args, **kwargs):
        raise KeyboardInterrupt

    import batchlab.paths

    with monkeypatch.context() as m:
        # cut off after writing, before the file is in place
        m.setattr(batchlab.paths.os, "replace", cut)
        with pytest.raises(KeyboardInterrupt):
            export.export_experiment(store, "exp", "json", out)
    assert out.read_bytes() == before and not list(tmp_path.glob(".x.json.*"))  # no temporary file
