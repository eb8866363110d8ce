"""bl.track: a hand-written training loop recorded into the store, then browsed, reported,
compared, diagnosed and exported like a batchlab-trained run."""

import argparse
import json
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import batchlab as bl
from batchlab.cli.browse import STATUS_COLUMNS
from batchlab.errors import SpecError, StoreError
from batchlab.events import MetricRows
from batchlab.execute.inline import InlineExecutor
from batchlab.execute.sweep import run_sweep
from batchlab.spec import spec_from_dict
from batchlab.store import Store


def batchlab(*args):
    return subprocess.run([sys.executable, "-m", "batchlab", *map(str, args)], capture_output=True,
                          text=True, timeout=300)


def own_loop(store, experiment, batch_size, lr, epochs=3, n=120):
    """A user's loop: a linear classifier on separable blobs, every value logged by hand.
    Returns the losses and validation values it logged, for comparison with the store."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    y = (x[:, 0] > 0).long()
    vx, vy = x[:40], y[:40]
    model = torch.nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    logged = {"train_loss": [], "val_acc": []}
    config = {"batch_size": batch_size, "lr": lr, "n_train": n, "epochs": epochs, "num_classes": 2,
              "model": "linear", "note": "hand loop"}
    with bl.track(experiment, config=config, store=store) as run:
        step = 0
        for _ in range(epochs):
            for i in range(0, n, batch_size):
                loss = F.cross_entropy(model(x[i:i + batch_size]), y[i:i + batch_size])
                opt.zero_grad()
                loss.backward()
                opt.step()
                step += 1
                run.log(step, train_loss=loss.detach(), lr=lr)
                logged["train_loss"].append(loss.item())
            with torch.no_grad():
                out = model(vx)
                acc = (out.argmax(1) == vy).float().mean().item()
                run.log(step, val_loss=F.cross_entropy(out, vy).item(), val_acc=acc)
                logged["val_acc"].append(acc)
    return run, logged


def test_tracked_loop_is_stored_like_a_trained_run(tmp_path):
    db = tmp_path / "s.db"
    run, logged = own_loop(db, "mine", batch_size=32, lr=0.5)
    with Store(db) as st:
        (rec,) = st.runs("mine")
        m = st.metrics(rec.id)
    assert rec.id == run.id and rec.id.startswith("t") and rec.status == "completed"
    assert rec.config["train"] == {"batch_size": 32, "lr": 0.5, "epochs": 3, "scale_lr": "none",
                                   "schedule": {"name": "constant"}}
    assert rec.config["model"]["name"] == "linear" and rec.config["tracked"] == {"note": "hand loop"}
    assert rec.steps == 12 and rec.point == {"train.batch_size": 32, "train.lr": 0.5}
    # every logged value, in order; epoch and examples as the trainer counts them (120 = 4 batches)
    assert m["train_loss"].value.tolist() == pytest.approx(logged["train_loss"], rel=1e-6)
    assert m["train_loss"].step.tolist() == list(range(1, 13))
    assert m["train_loss"].examples.tolist()[:5] == [32, 64, 96, 120, 152]
    assert m["train_loss"].epoch.tolist()[3] == 1.0
    assert m["lr"].value.tolist() == [0.5] * 12
    assert m["val_acc"].value.tolist() == logged["val_acc"] and m["val_acc"].epoch.tolist() == [1, 2, 3]
    assert rec.summary["best_val_acc"] == max(logged["val_acc"])
    assert rec.summary["final_train_loss"] == pytest.approx(logged["train_loss"][-1], rel=1e-6)
    assert rec.summary["effective_lr"] == 0.5 and rec.summary["steps_per_epoch"] == 4


def test_cli_browses_reports_compares_and_exports_tracked_runs(tmp_path):
    db = tmp_path / "s.db"
    for bs in (16, 64):
        own_loop(db, "mine", batch_size=bs, lr=0.5)
    own_loop(db, "other", batch_size=32, lr=0.1)
    res = batchlab("ls", "mine", "--store", db)
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("completed") == 2 and "16" in res.stdout and "64" in res.stdout
    res = batchlab("report", "mine", "--store", db, "-o", tmp_path / "r.html")
    assert res.returncode == 0, res.stderr
    html = (tmp_path / "r.html").read_text()
    assert "batch sizes [16, 64]" in html and "learning rates [0.5]" in html
    res = batchlab("compare", "mine", "other", "--store", db, "-o", tmp_path / "c.html")
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "c.html").stat().st_size > 0
    res = batchlab("export", "mine", "--store", db, "--format", "json", "-o", tmp_path / "e.json")
    assert res.returncode == 0, res.stderr
    doc = json.loads((tmp_path / "e.json").read_text())
    assert sorted(r["batch_size"] for r in doc["runs"]) == [16, 64]
    assert all("diagnosis" in r for r in doc["runs"]) and doc["analysis"]["runs"]
    assert {m["name"] for m in doc["metrics"]} >= {"train_loss", "lr", "val_loss", "val_acc"}


def test_rows_reach_the_store_in_batches(tmp_path):
    with Store(tmp_path / "s.db") as st:
        events = []
        record = st.record
        st.record = lambda e: (events.append(e), record(e))[1]
        with bl.track("b", config={"batch_size": 8}, store=st) as run:
            for s in range(1, 201):
                run.log(s, train_loss=1.0 / s)
        assert st.count_metric_rows(run.id) == 200  # no lr given: no lr rows
    batches = [e for e in events if isinstance(e, MetricRows)]
    assert 1 <= len(batches) <= 10  # a flush per second at most, and one at the end
    assert batches[-1].rows[-1][1:5] == (200, 1.0 / 200, 0.0, 1600)  # examples = step x batch


@pytest.mark.parametrize("raised, status", [(ValueError("bad batch"), "failed"),
                                            (KeyboardInterrupt(), "interrupted")])
def test_an_error_inside_the_block_marks_the_run_and_propagates(tmp_path, raised, status):
    db = tmp_path / "s.db"
    with pytest.raises(type(raised)):
        with bl.track("e", config={"batch_size": 4, "n_train": 8}, store=db) as run:
            run.log(1, train_loss=0.7, lr=0.1)
            raise raised
    with Store(db) as st:
        rec = st.run(run.id)
        assert rec.status == status and st.metrics(rec.id)["train_loss"].value.tolist() == [0.7]
    assert (rec.error or "").startswith("ValueError: bad batch" if status == "failed" else "interrupted")


def test_a_non_finite_loss_ends_the_run_diverged(tmp_path):
    db = tmp_path / "s.db"
    with bl.track("d", config={"batch_size": 4}, store=db) as run:
        for s, loss in enumerate([0.9, 0.8, math.inf, 0.5], 1):
            run.log(s, train_loss=loss, lr=1.0)
    with Store(db) as st:
        rec = st.run(run.id)
        assert rec.status == "diverged" and rec.summary["diverged_at_step"] == 3
        assert st.metrics(rec.id)["train_loss"].step.tolist() == [1, 2, 3]


def test_a_sweep_never_skips_or_retrains_tracked_runs(tmp_path):
    db = tmp_path / "s.db"
    spec = spec_from_dict({"name": "shared", "data": {"name": "synthetic", "shape": [4], "classes": 2,
                                                      "size": 60},
                           "model": {"name": "mlp", "hidden": [4]},
                           "train": {"epochs": 1, "threads": 1, "checkpoint": False},
                           "sweep": {"grid": {"train.batch_size": [32]}}})
    run, _ = own_loop(db, "shared", batch_size=32, lr=0.01, epochs=1)
    with Store(db) as st:
        before = st.metrics(run.id)["train_loss"].value.tolist()
        outcome = run_sweep(spec, st, InlineExecutor())
        assert (outcome.planned, outcome.skipped, outcome.trained) == (1, 0, 1)
        assert [r.status for r in st.runs("shared")] == ["completed", "completed"]
        assert st.metrics(run.id)["train_loss"].value.tolist() == before
        assert st.experiments()[0].spec["train"]["epochs"] == 1  # the sweep's spec is kept


def test_same_name_replaces_the_run(tmp_path):
    db = tmp_path / "s.db"
    for loss in (0.3, 0.2):
        with bl.track("n", config={"batch_size": 2}, store=db, name="first") as run:
            run.log(1, train_loss=loss)
    with Store(db) as st:
        (rec,) = st.runs("n")
        assert st.metrics(rec.id)["train_loss"].value.tolist() == [0.2]


@pytest.mark.parametrize("config, call, message", [
    ({"batch_size": 0}, None, "'batch_size' = 0 must be a positive integer"),
    ({"epochs": 2.5}, None, "'epochs' = 2.5 must be a positive integer"),
    ({"lr": "fast"}, None, "'lr' = 'fast' must be a number >= 0"),
    ({}, lambda r: r.log(-1, train_loss=1.0), "step = -1 must be an integer >= 0"),
    ({}, lambda r: r.log(1, train_loss=torch.ones(3)), "'train_loss' = tensor"),
    ({}, lambda r: r.log(1, val_acc="0.5"), "'val_acc' = '0.5' is not a number"),
])
def test_bad_input_is_one_clear_error(tmp_path, config, call, message):
    with pytest.raises(SpecError) as err:
        with bl.track("x", config=config, store=tmp_path / "s.db") as run:
            call(run)
    assert message in str(err.value)


@pytest.mark.parametrize("config, says", [
    ("batch_size=64", "config='batch_size=64' (str) is not a dict; pass a dict of flat keys"),
    ([("lr", 0.1)], "config=[('lr', 0.1)] (list) is not a dict; pass a dict of flat keys"),
    (argparse.Namespace(lr=0.1),
     "(Namespace) is not a dict; pass a dict of flat keys (an argparse.Namespace: vars(args))"),
])
def test_a_config_that_is_not_a_dict_is_one_clear_error(tmp_path, config, says):
    # dict(config) used to raise a ValueError or TypeError naming neither config nor the fix
    with pytest.raises(SpecError) as err:
        bl.track("x", config=config, store=tmp_path / "s.db")
    assert says in str(err.value) and str(err.value).startswith("bl.track: config=")
    assert not (tmp_path / "s.db").exists()


def test_a_name_that_is_not_a_string_is_refused(tmp_path):
    with pytest.raises(SpecError, match="bl.track: name=5 must be a string"):
        bl.track("x", store=tmp_path / "s.db", name=5)


def test_a_tracked_run_cannot_be_started_again_after_it_ended(tmp_path):
    """A second ``with run:`` used to restart the run under the same id, deleting its rows."""
    run = bl.track("again", store=tmp_path / "s.db")
    with run:
        run.log(1, train_loss=0.5)
    with pytest.raises(SpecError, match=r"has ended \(completed\): a TrackedRun records one run"):
        with run:
            run.log(1, train_loss=0.9)
    with Store(tmp_path / "s.db") as st:
        (rec,) = st.runs("again")
        assert rec.status == "completed"
        assert st.metrics(rec.id)["train_loss"].value.tolist() == [0.5]


def test_numpy_config_values_are_the_numbers_they_hold(tmp_path):
    """Values read from an array (np.int64, np.float32) are accepted and stored as numbers."""
    config = {"batch_size": np.int64(64), "n_train": np.int64(640), "lr": np.float64(0.1),
              "width": np.int32(8)}
    with bl.track("np", config=config, store=tmp_path / "s.db") as run:
        run.log(1, train_loss=0.5)
    with Store(tmp_path / "s.db") as st:
        (rec,) = st.runs("np")
    assert rec.config["train"]["batch_size"] == 64 and rec.config["train"]["lr"] == 0.1
    assert rec.config["tracked"] == {"width": 8} and rec.summary["steps_per_epoch"] == 10


@pytest.mark.parametrize("store", [None, 5])
def test_a_store_that_is_not_a_path_is_refused_up_front(store):
    with pytest.raises(SpecError) as err:
        bl.track("x", store=store)
    assert f"bl.track: store={store!r} must be the path of the store file" in str(err.value)


def test_a_bad_store_path_speaks_of_store_not_the_cli_flag(tmp_path):
    with pytest.raises(StoreError) as err, bl.track("x", store=tmp_path):
        pass
    assert f"store='{tmp_path}' is a folder" in str(err.value) and "--store" not in str(err.value)


def test_bl_track_works_when_the_module_is_what_the_package_holds(tmp_path, monkeypatch):
    """``import batchlab.track`` binds the module on the package: ``bl.track(...)`` still works."""
    import importlib

    module = importlib.import_module("batchlab.track")
    monkeypatch.setattr(bl, "track", module)
    with bl.track("m", config={"batch_size": 2}, store=tmp_path / "s.db") as run:
        run.log(1, train_loss=0.1)
    assert isinstance(run, module.TrackedRun) and run.status == "completed"


def test_the_diagnosis_reads_tracked_runs(tmp_path):
    """A tracked run that never leaves chance is diagnosed as one, beside one that learns."""
    db = tmp_path / "s.db"
    for lr, speed in ((0.0001, 0.0), (0.1, 1.0)):
        config = {"batch_size": 32, "n_train": 320, "lr": lr, "num_classes": 10, "epochs": 5}
        with bl.track("dg", config=config, store=db) as run:
            for step in range(1, 51):
                loss = math.log(10) * math.exp(-speed * step / 20)
                run.log(step, train_loss=loss, lr=lr)
                if step % 10 == 0:
                    run.log(step, val_loss=loss, val_acc=0.1 + 0.8 * (1 - math.exp(-speed * step / 20)))
    res = batchlab("export", "dg", "--format", "json", "-o", tmp_path / "e.json", "--store", db)
    assert res.returncode == 0, res.stderr
    rows = {r["lr"]: r for r in json.loads((tmp_path / "e.json").read_text())["runs"]}
    # one label (the most severe finding) and one sentence that names the other kind once
    assert rows[0.0001]["diagnosis"] == "never learned" and rows[0.1]["diagnosis"] == "ok"
    assert rows[0.0001]["diagnosis_text"] == ("Its val acc never rose above chance (it ends at "
                                              "10%); also LR too small.")


KILLED_LOOP = """
import os, signal, sys
import batchlab as bl
with bl.track("killed", config={"batch_size": 8, "lr": 0.1}, store=sys.argv[1]) as run:
    for step in range(1, 6):
        run.log(step, train_loss=1.0 / step, lr=0.1)
    run._flush()
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_loop_killed_with_kill_9_reads_as_interrupted_not_running(tmp_path):
    """Nothing can mark a run whose process was killed outright; ls and show see that its
    process is gone and say interrupted (the store keeps 'running', as for a sweep's run)."""
    db = tmp_path / "s.db"
    res = subprocess.run([sys.executable, "-c", KILLED_LOOP, str(db)], capture_output=True, timeout=300)
    assert res.returncode == -9
    with Store(db) as st:
        (rec,) = st.runs("killed")
        assert rec.status == "running" and len(st.metrics(rec.id)["train_loss"].value) == 5
    res = batchlab("ls", "killed", "--store", db)
    assert res.returncode == 0, res.stderr
    assert "interrupted at step 5 (its process is gone)" in res.stdout and "running" not in res.stdout
    overview = subprocess.run([sys.executable, "-m", "batchlab", "ls", "--store", str(db)], timeout=300,
                              capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}).stdout
    row = next(line for line in overview.splitlines() if line.startswith("│ killed "))
    columns = ("runs", *STATUS_COLUMNS)
    counts = dict(zip(columns, map(int, re.findall(r"\d+", row)), strict=True))
    assert counts["interrupted"] == 1 and counts["running"] == 0 and counts["runs"] == 1
    assert "interrupted at step 5" in batchlab("show", rec.id[:8], "--store", db).stdout


def test_a_schedule_given_by_name_reads_without_none_everywhere(tmp_path):
    """{"schedule": "step"} holds no step size or factor: tables and file names say 'step'."""
    db = tmp_path / "s.db"
    own = {"batch_size": 4, "lr": 0.1, "n_train": 8, "epochs": 2, "num_classes": 2, "schedule": "step"}
    with bl.track("e", config=own, store=db) as run:
        for step in (1, 2, 3, 4):
            run.log(step, train_loss=1.0 / step, lr=0.1)
        run.log(4, val_loss=0.5, val_acc=0.75)
    with bl.open(db) as db_:
        rows = db_.runs("e")
        rows = rows if isinstance(rows, list) else rows.to_dict("records")
        assert [r["schedule"] for r in rows] == ["step"]
        report = db_.report("e", tmp_path / "r.html")
    files = " ".join(p.name for p in report.figures)
    assert "curves-step.png" in files and "none" not in files
    assert "Noneep" not in report.html.read_text() and "xNone" not in report.html.read_text()
    listing = batchlab("ls", "e", "--store", db)
    assert listing.returncode == 0 and "None" not in listing.stdout and "step" in listing.stdout


def test_a_tracked_run_that_failed_before_validation_has_no_best_accuracy(tmp_path):
    db = tmp_path / "s.db"
    with pytest.raises(ValueError):
        with bl.track("e", config={"batch_size": 4, "n_train": 8}, store=db) as run:
            run.log(1, train_loss=0.7, lr=0.1)
            raise ValueError("bad batch")
    with Store(db) as st:
        assert "best_val_acc" not in st.run(run.id).summary


def test_a_run_without_lr_or_batch_size_that_barely_learned_reads_everywhere(tmp_path):
    """A tracked run's config may lack lr and batch_size; its "LR too small" verdict is still
    said (in words that need no LR) by ls, show and the report, with no 'None' for the values."""
    db = tmp_path / "s.db"
    with bl.track("bare", store=db) as run:
        for step in range(1, 5):
            run.log(step, train_loss=1.0)
        run.log(4, val_loss=1.0, val_acc=0.3)
    with bl.open(db) as reader:
        report = reader.report("bare", tmp_path / "r.html")
    html = report.html.read_text()
    assert "barely learned (LR too small): batch ?, lr ?" in html and "batch None" not in html
    assert "optimizer not recorded" in html and "optimizer None" not in html
    listing = batchlab("ls", "bare", "--store", db)
    assert listing.returncode == 0, listing.stderr
    assert "LR too small" in listing.stdout and "None" not in listing.stdout
    shown = batchlab("show", run.id, "--store", db)
    assert shown.returncode == 0, shown.stderr
    assert "LR too small: training loss fell only 0% (1 -> lowest 1) over the whole run" in shown.stdout


@pytest.mark.parametrize("probe", [(torch.zeros(4, 8), torch.zeros(4, dtype=torch.long)), "x"])
def test_watch_refuses_a_probe_the_model_cannot_take_at_once(tmp_path, probe):
    # an (x, y) batch as the probe raised torch's raw TypeError from run.log, at the first
    # step after an evaluation, with the run half trained
    model = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    model.train()
    with pytest.raises(SpecError) as err:
        with bl.track("w", {"batch_size": 4}, store=tmp_path / "s.db") as run:
            run.watch(model, probe=probe)
    assert str(err.value).startswith("run.watch: the model fails on probe= (TypeError: ")
    assert "not the (x, y) pair a DataLoader gives (probe=xb)" in str(err.value)
    assert model.training  # its mode is kept
    with bl.track("w", {"batch_size": 4}, store=tmp_path / "s.db") as run:
        run.watch(model, probe=torch.zeros(4, 8))  # a batch of inputs is taken
        run.log(1, train_loss=1.0)
