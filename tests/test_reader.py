"""bl.open: reading a store back as tables and numpy arrays (pandas optional)."""

import numpy as np
import pytest
from torch import nn

import batchlab as bl
from batchlab import reader
from batchlab.errors import SpecError, StoreError


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("reader") / "s.db"
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 4)).astype(np.float32)
    bl.sweep("exp", model=nn.Linear(4, 2), train=(x, (x[:, 0] > 0).astype(np.int64)),
             grid={"batch_size": [16, 32]}, epochs=2, lr=0.1, threads=1, store=path)
    return path


def test_experiments_runs_and_metrics_as_arrays(store, monkeypatch):
    monkeypatch.setattr(reader, "has_pandas", lambda: False)
    with bl.open(store) as db:
        assert db.experiments() == ["exp"]
        runs = db.runs("exp")
        assert isinstance(runs, list) and [r["batch_size"] for r in runs] == [16, 32]
        metrics = db.metrics(runs[0]["run_id"][:6], ["val_acc", "train_loss"])
        acc = metrics["val_acc"]
        assert isinstance(acc.value, np.ndarray) and list(acc.epoch) == [0.0, 1.0, 2.0]
        assert len(metrics["train_loss"].step) == 2 * 6  # 96 train examples / 16 per step, 2 epochs
        long = db.metrics_frame(runs[0]["run_id"], ["val_acc"])
        assert [r["epoch"] for r in long] == [0.0, 1.0, 2.0]
        assert db.experiment("exp").counts.get("completed") == 2


def test_dataframes_when_pandas_is_installed(store):
    pd = pytest.importorskip("pandas")
    with bl.open(store) as db:
        table = db.runs("exp")
        assert isinstance(table, pd.DataFrame) and list(table["batch_size"]) == [16, 32]
        assert set(db.metrics_frame(table["run_id"][0])["metric"]) >= {"val_acc", "train_loss"}


def test_unknown_names_and_missing_files_are_clear_errors(store, tmp_path):
    with bl.open(store) as db:
        with pytest.raises(StoreError, match="it has: exp"):
            db.runs("nope")
        with pytest.raises(StoreError, match="matches no run"):
            db.run("zzzz")
    with pytest.raises(StoreError, match="does not exist"):
        bl.open(tmp_path / "missing.db")
    assert not (tmp_path / "missing.db").exists()  # never creates an empty store


def test_a_folder_is_named_as_a_folder_not_as_missing(tmp_path):
    # it said "store '<folder>' does not exist" of a folder that does
    with pytest.raises(StoreError) as err:
        bl.open(tmp_path)
    assert f"'{tmp_path}' is a folder" in str(err.value)
    assert f"bl.open('{tmp_path / 'batchlab.db'}')" in str(err.value)
    assert "does not exist" not in str(err.value)


def test_one_metric_name_and_a_name_the_run_lacks(store, tmp_path, monkeypatch):
    monkeypatch.setattr(reader, "has_pandas", lambda: False)
    with bl.open(store) as db:
        run = db.runs("exp")[0]["run_id"]
        one = db.metrics(run, "val_acc")  # one name, not its letters
        assert list(one) == ["val_acc"] and list(one["val_acc"].epoch) == [0.0, 1.0, 2.0]
        assert [r["metric"] for r in db.metrics_frame(run, "val_acc")] == ["val_acc"] * 3
        with pytest.raises(StoreError) as err:
            db.metrics(run, ["val_accuracy", "val_loss"])
        text = str(err.value)
        assert f"run {run} has no metric 'val_accuracy'; it has: " in text
        assert "train_loss" in text and "val_acc, " in text and "Did you mean 'val_acc'?" in text
        with pytest.raises(StoreError, match="metric names must be strings"):
            db.metrics(run, [1])
    with pytest.raises(SpecError, match="bl.open: store=None must be the path"):
        bl.open(None)
    (tmp_path / "x.db").write_text("not a store")
    with pytest.raises(StoreError) as err:
        bl.open(tmp_path / "x.db")
    assert "Pass store= with a new file name" in str(err.value) and "--store" not in str(err.value)


def test_report_of_a_stored_experiment(store, tmp_path):
    with bl.open(store) as db:
        written = db.report("exp", tmp_path / "r.html")
        with pytest.raises(StoreError, match="no experiment 'nope'"):
            db.report("nope", tmp_path / "x.html")
    assert written.html.is_file() and "batchlab report: exp" in written.html.read_text()
    assert not (tmp_path / "x.html").exists()


def test_an_experiment_of_probes_only_is_listed_read_reported_and_removed(tmp_path):
    """bl.throughput(store=, experiment=) stores no runs: bl.open, ls, report and rm agree
    that the experiment exists (issue 21, part 2, item 6)."""
    import subprocess
    import sys

    path = tmp_path / "p.db"
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 4)).astype(np.float32)
    bl.throughput(model=nn.Linear(4, 2), train=(x, (x[:, 0] > 0).astype(np.int64)),
                  batch_sizes=[8, 16], store=path, experiment="pr")

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "batchlab", *args, "--store", str(path)],
                              capture_output=True, text=True, timeout=120)

    with bl.open(path) as db:
        assert db.experiments() == ["pr"]
        assert len(db.runs("pr")) == 0
        written = db.report("pr", tmp_path / "pr.html")
    assert written.html.is_file() and [p.name for p in written.figures] == ["probe-1.png"]
    listing = cli("ls")
    assert listing.returncode == 0 and "│ pr " in listing.stdout
    assert "'pr' holds 1 probe result(s) (throughput) and no runs" in listing.stdout
    one = cli("ls", "pr")  # its probes said, not an empty runs table with 'show RUN' of no run
    assert one.returncode == 0 and "'pr' holds 1 probe result(s) (throughput) and no runs" in one.stdout
    assert "run id" not in one.stdout and "batchlab show RUN" not in one.stdout
    removed = cli("rm", "pr", "--yes")
    assert removed.returncode == 0, removed.stderr
    with bl.open(path) as db:
        assert db.experiments() == [] and not db.store.probes("pr")


def test_a_live_run_reads_an_empty_series_for_a_metric_it_has_not_logged_yet(tmp_path, monkeypatch):
    """Polling a run that is still training for val_acc before its first evaluation."""
    monkeypatch.setattr(reader, "has_pandas", lambda: False)
    with bl.track("live", store=tmp_path / "t.db", config={"lr": 0.1}) as run:
        run.log(1, train_loss=1.0)
        with bl.open(tmp_path / "t.db") as db:
            rid = db.runs("live")[0]["run_id"]
            assert len(db.metrics(rid, ["val_acc"])["val_acc"].step) == 0
    with bl.open(tmp_path / "t.db") as db, pytest.raises(StoreError, match="has no metric 'val_acc'"):
        db.metrics(rid, ["val_acc"])  # ended: it never will have it
