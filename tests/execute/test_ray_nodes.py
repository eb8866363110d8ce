"""A real two-node Ray cluster (two `ray start` on loopback, 1 CPU each): kill -9 the node
that trains a run, mid-run. The sweep (`batchlab sweep --executor ray --address ...`) must
finish every run exactly once on the surviving node, the killed run resuming from the
checkpoint its first attempt sent to the driver (no shared filesystem is used: the default
checkpoint storage goes through Ray), with the numbers of an uninterrupted sweep."""

import subprocess
import sys
import time
import tomllib

import pytest
import torch
from raynodes import TwoNodes, ray_env

from batchlab.execute.inline import InlineExecutor
from batchlab.execute.sweep import run_sweep
from batchlab.spec import spec_from_dict
from batchlab.store import Store

pytest.importorskip("ray", reason="Ray is not installed (pip install batchlab[ray])")

# two runs of ~2,500 steps: long enough to kill one after its first checkpoint (epoch 1),
# short enough for a fast test
SPEC = """
name = "nodes"
[data]
name = "synthetic"
shape = [16]
classes = 4
size = 1500
[model]
name = "mlp"
hidden = [32]
[train]
epochs = 60
lr = 0.05
threads = 1
[sweep.grid]
"train.batch_size" = [24, 32]
"""
COMPARED = ("train_loss", "lr", "val_loss", "val_acc")


def wait_for(pred, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if (got := pred()):
            return got
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def checkpoint_step(path):
    """The step of the checkpoint file at ``path``, 0 when there is none (yet, or any more)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=False)["step"]
    except Exception:  # absent, or replaced under us: look again
        return 0


def store_runs(db):
    try:
        with Store(db) as st:
            return {r.id: r for r in st.runs("nodes")}
    except Exception:
        return {}


def train_loss_rows(db, run_id, up_to):
    """(step, wall_time) of the run's train_loss rows up to ``up_to``: a row rewritten by a
    restarted attempt gets a new wall time."""
    with Store(db) as st:
        return st.conn.execute("SELECT step, wall_time FROM metrics WHERE run_id=? AND "
                               "name='train_loss' AND step<=? ORDER BY step",
                               (run_id, up_to)).fetchall()


@pytest.fixture
def two_nodes():
    cluster = TwoNodes()
    try:
        yield cluster
    finally:
        cluster.stop()  # every process of both nodes, whatever happened


def test_a_killed_node_s_run_resumes_on_the_other_node(tmp_path, two_nodes):
    spec_file = tmp_path / "nodes.toml"
    spec_file.write_text(SPEC)
    head = two_nodes.start_head()
    # the uninterrupted sweep, in this process, while the head starts
    with Store(tmp_path / "reference.db") as ref:
        run_sweep(spec_from_dict(tomllib.loads(SPEC)), ref, InlineExecutor(threads=1))
        reference = {r.id: ref.metrics(r.id) for r in ref.runs("nodes")}
    two_nodes.wait_started(head)
    # the second node does not see this test's folder (the store, the checkpoints beside it):
    # no shared filesystem, as on another machine
    two_nodes.wait_started(two_nodes.start_node(hide=tmp_path))

    db = tmp_path / "s.db"
    ckpt = tmp_path / "s.db.ckpt"
    sweep = subprocess.Popen(
        [sys.executable, "-m", "batchlab", "sweep", str(spec_file), "--store", str(db),
         "--executor", "ray", "--address", two_nodes.address],
        env=ray_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        def victim_checkpointed():
            """The run on the second node, once it has sent a checkpoint past step 0."""
            assert sweep.poll() is None, "the sweep ended before a node was killed"
            return next((r for r in two_nodes.busy_runs()
                         if checkpoint_step(ckpt / f"{r}.pt") > 0), None)

        victim = wait_for(victim_checkpointed, 240, "a checkpoint of the second node's run")
        assert two_nodes.kill_node()
        saved = wait_for(lambda: checkpoint_step(ckpt / f"{victim}.pt"), 10, "the checkpoint")
        # the rows up to the checkpoint reach the store (the driver drains Ray's queue)
        wait_for(lambda: store_runs(db)[victim].progress_step >= saved, 30, "the stored rows")
        kept = train_loss_rows(db, victim, saved)
        out, _ = sweep.communicate(timeout=300)
    finally:
        if sweep.poll() is None:
            sweep.kill()
            sweep.wait()
    assert sweep.returncode == 0, out[-3000:]
    assert not two_nodes.node_processes()  # the second node stayed dead: all ran on the head

    runs = store_runs(db)
    assert {r.status for r in runs.values()} == {"completed"}
    # exactly once: the victim was started twice (cut off, then resumed), the other once
    assert {rid: r.attempts for rid, r in runs.items()} == {
        rid: 2 if rid == victim else 1 for rid in runs}
    # resumed from its checkpoint, not from step 0: the rows up to there are the first
    # attempt's (a restart deletes and rewrites them, with new wall times)
    assert len(kept) == saved > 0
    assert train_loss_rows(db, victim, saved) == kept
    with Store(db) as st:
        for rid, r in runs.items():
            got = st.metrics(rid)
            assert got["train_loss"].step.tolist() == list(range(1, r.summary["total_steps"] + 1))
            for name in COMPARED:  # no lost or duplicated rows, the uninterrupted numbers
                assert got[name].step.tolist() == reference[rid][name].step.tolist(), name
                assert got[name].value.tolist() == reference[rid][name].value.tolist(), name
    assert not list(ckpt.glob("*.pt"))  # completed runs leave no checkpoint
