import math
import sqlite3

import pytest

from batchlab.errors import StoreError
from batchlab.events import MetricRows, RunEnded, RunStarted
from batchlab.plan import plan_runs
from batchlab.spec import spec_from_dict
from batchlab.store import SCHEMA_VERSION, Store


@pytest.fixture
def planned():
    spec = spec_from_dict({"name": "exp", "sweep": {"grid": {"train.batch_size": [16, 32]}}})
    return spec, plan_runs(spec)


def test_new_store_is_wal_with_schema_version(tmp_path):
    path = tmp_path / "b.db"
    Store(path).close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    meta = dict(conn.execute("SELECT key, value FROM meta"))
    assert meta["app"] == "batchlab" and int(meta["schema_version"]) == SCHEMA_VERSION


def test_experiment_runs_metrics_round_trip(tmp_path, planned):
    spec, runs = planned
    with Store(tmp_path / "b.db") as st:
        st.add_experiment("exp", spec.model_dump(mode="json"), runs)
        st.add_experiment("exp", spec.model_dump(mode="json"), runs)  # idempotent
        rid = runs[0].run_id
        st.record(RunStarted(rid, 10, 0, {"torch": "x"}))
        st.record(MetricRows(rid, [("train_loss", 1, 2.5, 0.1, 16, 0.01),
                                   ("train_loss", 2, math.nan, 0.2, 32, 0.02),
                                   ("train_loss", 3, math.inf, 0.3, 48, 0.03),
                                   ("val_acc", 3, 0.5, 0.3, 48, 0.03)], 3))
        st.record(RunEnded(rid, "diverged", 3, 0.5, {"best_val_acc": 0.5}, "non-finite"))
        recs = st.runs("exp")
        assert [r.id for r in recs] == [r.run_id for r in runs]
        assert recs[0].status == "diverged" and recs[0].summary == {"best_val_acc": 0.5}
        assert recs[0].environment == {"torch": "x"} and recs[0].point == {"train.batch_size": 16}
        assert recs[1].status == "pending"
        s = st.metrics(rid)["train_loss"]
        assert s.step.tolist() == [1, 2, 3] and s.examples.tolist() == [16, 32, 48]
        assert s.value[0] == 2.5 and math.isnan(s.value[1]) and s.value[2] == math.inf
        assert st.count_metric_rows(rid) == 4
        assert st.run(rid[:6]).id == rid
        assert [e.name for e in st.experiments()] == ["exp"]
        assert st.experiments()[0].counts == {"diverged": 1, "pending": 1}


def test_resume_drops_rows_past_the_checkpoint_and_replace_is_unique(tmp_path, planned):
    spec, runs = planned
    rid = runs[0].run_id
    with Store(tmp_path / "b.db") as st:
        st.add_experiment("exp", {}, runs)
        st.record(MetricRows(rid, [("lr", s, 0.1, 0, 0, 0) for s in range(1, 11)], 10))
        st.record(RunStarted(rid, 20, 6, {}))
        assert st.metrics(rid)["lr"].step.tolist() == [1, 2, 3, 4, 5, 6]
        st.record(MetricRows(rid, [("lr", 6, 0.2, 0, 0, 0)], 6))
        assert st.count_metric_rows(rid) == 6 and st.metrics(rid)["lr"].value[-1] == 0.2
        assert st.run(rid).progress_step == 6


def test_not_a_batchlab_store_is_left_untouched(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"hello, I am not a database" * 10)
    before = junk.read_bytes()
    with pytest.raises(StoreError, match="not a batchlab store"):
        Store(junk)
    assert junk.read_bytes() == before
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t(x)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="without batchlab's tables"):
        Store(other)


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "b.db"
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="schema version 99"):
        Store(path)


def test_missing_store_and_unknown_names(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        Store(tmp_path / "none.db", create=False)
    (tmp_path / "touched.db").touch()  # a placeholder, which a sweep makes a store
    with pytest.raises(StoreError, match=r"store '.*touched.db' is an empty file, not a store yet; "
                       "run a sweep first"):
        Store(tmp_path / "touched.db", create=False)
    with Store(tmp_path / "b.db") as st:
        with pytest.raises(StoreError, match="no experiment named 'zz'"):
            st.runs("zz")
        with pytest.raises(StoreError, match="no run with id starting 'abc'"):
            st.run("abc")


def test_probes_round_trip(tmp_path):
    with Store(tmp_path / "b.db") as st:
        pid = st.add_probe("exp", "lr_range", {"batch_size": 32}, {"suggested_lr": 0.01})
        st.add_probe("other", "throughput", {}, {"knee": 256})
        (p,) = st.probes("exp")
        assert p.id == pid and p.kind == "lr_range" and p.result == {"suggested_lr": 0.01}
        assert [q.kind for q in st.probes(kind="throughput")] == ["throughput"]
        assert len(st.probes()) == 2


def version_1_store(path):
    """A store at ``path`` made as batchlab's first schema had it (no probes, no attempts, no
    fingerprints)."""
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE probes")
    conn.execute("ALTER TABLE runs DROP COLUMN attempts")
    conn.execute("ALTER TABLE runs DROP COLUMN fingerprint_json")
    conn.execute("UPDATE meta SET value='1' WHERE key='schema_version'")
    conn.commit()
    conn.close()
    return path


def test_version_1_store_is_migrated(tmp_path):
    path = version_1_store(tmp_path / "b.db")
    with Store(path) as st:
        st.add_probe("e", "k", {}, {})
        assert len(st.probes()) == 1
    meta = dict(sqlite3.connect(path).execute("SELECT key, value FROM meta"))
    assert meta["schema_version"] == str(SCHEMA_VERSION)


def test_an_older_store_opened_read_only_is_read_upgraded_and_left_as_it_was(tmp_path):
    """A dry run, the dashboard or read-only media read an older store through a copy in
    memory: the file is not written (its bytes and schema version stay), the rows are read."""
    path = version_1_store(tmp_path / "b.db")
    before = path.read_bytes()
    with Store(path, create=False, read_only=True) as st:
        assert st.probes() == [] and st.runs() == []  # the version-1 store had no probes table
    assert path.read_bytes() == before
    assert dict(sqlite3.connect(path).execute("SELECT key, value FROM meta"))["schema_version"] == "1"


RACE = """
import sys, time
from batchlab.store import Store
start = float(sys.argv[2])
while time.time() < start:
    pass
Store(sys.argv[1]).close()
"""


def test_two_processes_creating_one_store_at_once_both_open_it(tmp_path):
    import subprocess
    import sys
    import time

    script = tmp_path / "race.py"
    script.write_text(RACE)
    for i in range(4):
        path = tmp_path / f"race{i}.db"
        start = str(time.time() + 1.5)
        procs = [subprocess.Popen([sys.executable, str(script), str(path), start],
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
        errors = [p.communicate(timeout=60)[1] for p in procs]
        assert [p.returncode for p in procs] == [0, 0], errors
        with Store(path) as st:
            assert st.experiments() == []
        assert not list(tmp_path.glob(f".race{i}.db.*"))  # no temporary file left behind
