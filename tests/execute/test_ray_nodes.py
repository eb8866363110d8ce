"""A real two-node Ray cluster (two `ray start` on loopback, 1 CPU each): kill -9 the node
that trains a run, mid-run. The sweep (`batchlab sweep --executor ray --address ...`) must
finish every run exactly once on the surviving node, the killed run resuming from the
checkpoint its first attempt sent to the driver (no shared filesystem is used: the default
checkpoint storage goes through Ray), with the numbers of an uninterrupted sweep. And a DDP
run whose two processes (Ray Train workers) train one on each node."""

import subprocess
import sys
import time

import pytest
import torch
from raynodes import TwoNodes, _cmdline, ray_env

from batchlab.store import Store

pytest.importorskip("ray", reason="Ray is not installed (pip install batchlab[ray])")
pytestmark = pytest.mark.slow  # two Ray nodes, two sweeps: 1-3 min on a busy 2-core machine; CI runs it

# two runs of ~1,500 and ~2,000 steps: long enough to kill one after its first checkpoint
# (epoch 1), short enough for a fast test
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
epochs = 40
lr = 0.05
threads = 1
[sweep.grid]
"train.batch_size" = [24, 32]
"""
COMPARED = ("train_loss", "lr", "val_loss", "val_acc")


def wait_for(pred, timeout, what, every=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if (got := pred()):
            return got
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def sweep_cmd(spec_file, db, *options):
    return [sys.executable, "-m", "batchlab", "sweep", str(spec_file), "--store", str(db), *options]


def start(cmd, log):
    """``cmd`` in the background, its output to the file ``log`` (a pipe left unread can fill)."""
    with open(log, "w") as out:
        return subprocess.Popen(cmd, env=ray_env(), stdout=out, stderr=subprocess.STDOUT)


def checkpoint_step(path):
    """The step of the checkpoint file at ``path``, 0 when there is none (yet, or any more)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=False)["step"]
    except Exception:  # absent, or replaced under us: look again
        return 0


def store_runs(db, name="nodes"):
    try:
        with Store(db) as st:
            return {r.id: r for r in st.runs(name)}
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
    db = tmp_path / "s.db"
    ckpt = tmp_path / "s.db.ckpt"
    sweep = uninterrupted = None
    try:
        # the second node does not see this test's folder (the store, the checkpoints beside
        # it): no shared filesystem, as on another machine
        two_nodes.start(hide=tmp_path)
        sweep = start(sweep_cmd(spec_file, db, "--executor", "ray", "--address", two_nodes.address),
                      tmp_path / "sweep.log")
        # the uninterrupted sweep, in a process of its own, while that one trains (not while
        # the nodes start: Ray gives a raylet 30 s to come up)
        uninterrupted = start(sweep_cmd(spec_file, tmp_path / "reference.db"),
                              tmp_path / "reference.log")

        def victim_checkpointed():
            """The run on the second node, once it has sent a checkpoint past step 0."""
            assert sweep.poll() is None, "the sweep ended before a node was killed"
            if not any(ckpt.glob("*.pt")):  # cheap: no process scan before any checkpoint
                return None
            return next((r for r in two_nodes.busy_runs()
                         if checkpoint_step(ckpt / f"{r}.pt") > 0), None)

        victim = wait_for(victim_checkpointed, 240, "a checkpoint of the second node's run", 0.1)
        assert two_nodes.kill_node()
        saved = wait_for(lambda: checkpoint_step(ckpt / f"{victim}.pt"), 10, "the checkpoint")
        # the rows up to the checkpoint reach the store (the driver drains Ray's queue)
        wait_for(lambda: store_runs(db)[victim].progress_step >= saved, 30, "the stored rows")
        kept = train_loss_rows(db, victim, saved)
        sweep.wait(timeout=300)
        uninterrupted.wait(timeout=300)
    finally:
        for proc in (sweep, uninterrupted):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    assert sweep.returncode == 0, (tmp_path / "sweep.log").read_text()[-3000:]
    assert uninterrupted.returncode == 0, (tmp_path / "reference.log").read_text()[-3000:]
    with Store(tmp_path / "reference.db") as ref:
        reference = {r.id: ref.metrics(r.id) for r in ref.runs("nodes")}
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


DDP_SPEC = """
name = "ddpnodes"
[data]
name = "digits"
[model]
name = "mlp"
hidden = [32]
[train]
batch_size = 64
steps = 200
lr = 0.05
device = "cpu"
threads = 1
devices = 2
strategy = "ddp"
"""


def test_a_ddp_run_spans_both_nodes(tmp_path, two_nodes):
    """A DDP run of 2 processes with --cpus-per-run 2: each Ray Train worker takes 1 CPU and
    each node has 1, so rank 0 and rank 1 train on different nodes (a worker is seen on the
    second node), joined by gloo over the nodes' addresses; the run completes with the
    numbers of 1 process x 64, every step stored once."""
    from batchlab.events import MetricRows
    from batchlab.execute.function import train_task
    from batchlab.spec import RunConfig, load_spec

    spec_file = tmp_path / "ddp.toml"
    spec_file.write_text(DDP_SPEC)
    db = tmp_path / "s.db"
    two_nodes.start(hide=tmp_path)
    sweep = start(sweep_cmd(spec_file, db, "--executor", "ray", "--address", two_nodes.address,
                            "--cpus-per-run", "2"), tmp_path / "sweep.log")
    seen_there = False
    try:
        deadline = time.monotonic() + 300
        while sweep.poll() is None and time.monotonic() < deadline:
            seen_there = seen_there or any(
                _cmdline(p).startswith("ray::RayTrainWorker") for p in two_nodes.node_processes())
            time.sleep(0.5)
    finally:
        if sweep.poll() is None:
            sweep.kill()
            sweep.wait()
    assert sweep.returncode == 0, (tmp_path / "sweep.log").read_text()[-3000:]
    assert seen_there, "no Ray Train worker ran on the second node"
    s = load_spec(spec_file)
    one = RunConfig(data=s.data, model=s.model, train=s.train.model_copy(
        update={"devices": 1, "strategy": "single"}))
    events = []
    train_task(one, events.append)
    whole = {r[1]: r[2] for e in events if isinstance(e, MetricRows) for r in e.rows
             if r[0] == "train_loss"}
    (run,) = store_runs(db, "ddpnodes").values()
    assert run.status == "completed" and run.attempts == 1
    assert run.summary["nodes"] == 2 and run.summary["devices"] == 2
    with Store(db) as st:
        got = st.metrics(run.id, ["train_loss"])["train_loss"]
    assert got.step.tolist() == list(range(1, 201))  # each step once: rank 0 alone writes
    assert max(abs(float(v) - whole[int(k)]) for k, v in zip(got.step, got.value, strict=True)) < 1e-4
