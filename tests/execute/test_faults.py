"""Fault tests: killed drivers, killed workers, concurrent sweeps. Bounded in time."""

import os
import random
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from batchlab.execute.inline import InlineExecutor
from batchlab.execute.sweep import run_sweep
from batchlab.spec import spec_from_dict
from batchlab.store import Store

SPEC = """
name = "faults"
[data]
name = "synthetic"
shape = [64]
classes = 5
size = 2500
[model]
name = "mlp"
hidden = [96, 96]
[train]
epochs = 25
lr = 0.02
threads = 1
[sweep.grid]
"train.batch_size" = [16, 24, 32, 48]
"""


@pytest.fixture
def spec_file(tmp_path):
    p = tmp_path / "faults.toml"
    p.write_text(SPEC)
    return p


def sweep_cmd(spec_file, db, workers=1):
    return [sys.executable, "-m", "batchlab", "sweep", str(spec_file), "--store", str(db),
            "--workers", str(workers)]


def children(pid):
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def descendants(pid):
    """Every process below ``pid`` (children, their children, ...)."""
    found, todo = [], [pid]
    while todo:
        kids = children(todo.pop())
        found += kids
        todo += kids
    return found


def run_status(db):
    try:
        with Store(db) as st:
            return {r.id: r for r in st.runs("faults")}
    except Exception:
        return {}


def wait_for(pred, timeout=120):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(scope="module")
def reference_db(tmp_path_factory):
    """The same sweep run once, uninterrupted, in this process."""
    db = tmp_path_factory.mktemp("ref") / "reference.db"
    with Store(db) as ref:
        run_sweep(spec_from_dict(tomllib.loads(SPEC)), ref, InlineExecutor(threads=1))
    return db


@pytest.fixture(scope="module")
def reference(reference_db):
    """The metrics of the uninterrupted sweep, by run id."""
    with Store(reference_db) as ref:
        return {r.id: ref.metrics(r.id) for r in ref.runs("faults")}


@pytest.fixture(scope="module")
def shortest_run_s(reference_db):
    """Wall seconds of the sweep's shortest run on this machine: a kill within it lands
    mid-training whatever the machine's speed."""
    with Store(reference_db) as ref:
        return min(r.wall_time for r in ref.runs("faults"))


def assert_all_done_once_and_exact(db, expected):
    """Every run completed, each metric row once, and the numbers equal an uninterrupted sweep."""
    with Store(db) as st:
        runs = st.runs("faults")
        assert [r.status for r in runs] == ["completed"] * 4
        for r in runs:
            got = st.metrics(r.id)
            loss = got["train_loss"]
            assert loss.step.tolist() == list(range(1, r.summary["total_steps"] + 1))
            for name in ("train_loss", "lr", "val_loss", "val_acc"):
                assert got[name].step.tolist() == expected[r.id][name].step.tolist()
                assert got[name].value.tolist() == expected[r.id][name].value.tolist(), name
    return runs


@pytest.mark.parametrize("workers", [1, 2])
def test_driver_killed_repeatedly_then_resumed(tmp_path, spec_file, workers, reference,
                                               shortest_run_s):
    kill_driver_repeatedly_then_resume(spec_file, tmp_path / "s.db", workers, reference,
                                       shortest_run_s)


def kill_driver_repeatedly_then_resume(spec_file, db, workers, reference, shortest_run_s):
    """SIGKILL the sweep's driver three times at random moments, then let a fourth finish: every
    run must end once, with the numbers of an uninterrupted sweep (``reference``)."""
    rng = random.Random(workers)
    for _ in range(3):
        proc = subprocess.Popen(sweep_cmd(spec_file, db, workers), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        # kill at a random moment once training is under way (mid-step, mid-write, mid-checkpoint):
        # from the moment this driver starts a run (its rows reach the store only once a second)
        started = attempts(db)
        wait_for(lambda started=started: attempts(db) > started or all_done(db), 60)
        time.sleep(rng.uniform(0.0, 0.8) * shortest_run_s)
        kids = children(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        # orphaned workers notice their driver is gone and stop
        assert wait_for(lambda kids=kids: not any(Path(f"/proc/{k}").exists()
                                        and "batchlab" in _cmdline(k) for k in kids), 30)
    done = subprocess.run(sweep_cmd(spec_file, db, workers), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    runs = assert_all_done_once_and_exact(db, reference)
    assert any(r.attempts > 1 for r in runs)  # something really was cut off and resumed


def attempts(db):
    """How many times the store's runs were started, all together."""
    return sum(r.attempts for r in run_status(db).values())


def all_done(db):
    runs = run_status(db).values()
    return bool(runs) and all(r.status == "completed" for r in runs)


def _cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def sweep_killing(cmd, db, reference, ready, victims):
    """Run a sweep, SIGKILL ``victims()`` once ``ready()``; it must still finish every run
    exactly once with the uninterrupted numbers, and retry what was killed."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(ready, 120)
        pids = victims(proc.pid)
        assert pids, "nothing to kill"
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    runs = assert_all_done_once_and_exact(db, reference)
    assert sum(r.attempts for r in runs) >= 5  # a killed run was retried


def test_killed_worker_is_replaced_and_its_run_retried(tmp_path, spec_file, reference):
    kill_both_workers(spec_file, tmp_path / "s.db", reference)


def kill_both_workers(spec_file, db, reference):
    """Once both workers are mid-run (each run has stored rows), SIGKILL them both: the sweep
    replaces them, retries their runs and ends with the uninterrupted numbers."""
    sweep_killing(
        sweep_cmd(spec_file, db, 2), db, reference,
        ready=lambda: sum(r.status == "running" and r.progress_step > 0
                          for r in run_status(db).values()) == 2,
        victims=lambda driver: [k for k in children(driver) if "spawn_main" in _cmdline(k)
                                and "resource_tracker" not in _cmdline(k)])


def test_two_concurrent_sweeps_share_the_work(tmp_path, spec_file, reference):
    db = tmp_path / "s.db"
    procs = [subprocess.Popen(sweep_cmd(spec_file, db, 1), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    runs = assert_all_done_once_and_exact(db, reference)
    assert [r.attempts for r in runs] == [1, 1, 1, 1]  # no run trained twice
    # both drivers print the complete table at the end
    assert all(o.count("completed") == 4 for o, _ in outs)


def test_ray_sweep_survives_a_killed_worker(tmp_path, spec_file, reference):
    pytest.importorskip("ray")
    db = tmp_path / "s.db"
    sweep_killing(
        sweep_cmd(spec_file, db, 1) + ["--executor", "ray"], db, reference,
        ready=lambda: any(r.progress_step > 0 for r in run_status(db).values()),
        # this sweep's own Ray worker (the driver's raylet starts it): a test running beside
        # this one may have Ray workers of its own
        victims=lambda driver: [p for p in descendants(driver)
                                if _cmdline(p).startswith("ray::batchlab run ")][:1])
