import subprocess
import sys

from batchlab.events import RunEnded
from batchlab.plan import plan_runs
from batchlab.spec import spec_from_dict
from batchlab.store import Store
from batchlab.store.claims import claim, new_owner, owner_is_dead, release


def store_with_run(tmp_path):
    spec = spec_from_dict({"name": "e"})
    runs = plan_runs(spec)
    st = Store(tmp_path / "c.db")
    st.add_experiment("e", {}, runs)
    return st, runs[0].run_id


def test_claim_is_exclusive_until_stale(tmp_path):
    st, rid = store_with_run(tmp_path)
    a, b = new_owner(), new_owner()
    assert claim(st, rid, a) == "claimed"
    assert claim(st, rid, b) == "busy"
    assert claim(st, rid, a) == "claimed"  # its own claim
    assert claim(st, rid, b, stale_after=-1) == "claimed"  # a's heartbeat is stale: taken over
    st.record(RunEnded(rid, "completed", 1, 0.1, {}))
    assert claim(st, rid, a) == "final"


def test_claim_of_a_dead_local_process_is_free_at_once(tmp_path):
    st, rid = store_with_run(tmp_path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    import socket

    ghost = f"{socket.gethostname()}:{dead}:deadbeef"
    assert owner_is_dead(ghost) and not owner_is_dead(new_owner())
    assert not owner_is_dead("some-other-host:1:x")
    assert claim(st, rid, ghost) == "claimed"
    assert claim(st, rid, new_owner()) == "claimed"


def test_release_marks_only_own_runs_interrupted(tmp_path):
    st, rid = store_with_run(tmp_path)
    me, other = new_owner(), new_owner()
    claim(st, rid, other)
    release(st, me)
    assert st.run(rid).status == "running"
    release(st, other)
    assert st.run(rid).status == "interrupted"
