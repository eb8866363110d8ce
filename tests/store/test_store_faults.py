"""Store paths that are wrong, foreign, read-only or on a full disk: one paragraph, no damage."""

import hashlib
import sqlite3
import subprocess
import sys

import pytest

from batchlab.errors import BatchlabError, StoreError
from batchlab.events import RunEnded, RunStarted
from batchlab.plan import plan_runs
from batchlab.spec import spec_from_dict
from batchlab.store import Store


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cli(*args):
    return subprocess.run([sys.executable, "-m", "batchlab", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def store_with_one_run(path):
    spec = spec_from_dict({"name": "exp"})
    runs = plan_runs(spec)
    with Store(path) as st:
        st.add_experiment("exp", spec.model_dump(mode="json"), runs)
        st.record(RunStarted(runs[0].run_id, 10, 0, {}))
        st.record(RunEnded(runs[0].run_id, "completed", 10, 1.0, {"best_val_acc": 0.5}))
    return runs[0].run_id


def test_foreign_sqlite_file_is_not_modified(tmp_path):
    other = tmp_path / "other_app.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE things (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO things(name) VALUES ('keep me')")
    conn.commit()
    conn.close()
    before = sha(other)
    for create in (True, False):
        with pytest.raises(StoreError, match="not a batchlab store.*left untouched"):
            Store(other, create=create)
    res = cli("ls", "--store", other)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert sha(other) == before  # not switched to WAL mode, not touched at all
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other_app.db"]


@pytest.mark.parametrize("command", ["ls", "show x", "sweep"])
def test_store_that_is_a_folder_or_under_a_file(tmp_path, command):
    spec = tmp_path / "s.toml"
    spec.write_text('[train]\nepochs = 1\n')
    args = command.split() + ([spec] if command == "sweep" else [])
    res = cli(*args, "--store", tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "is a folder; give a file name inside it" in res.stderr
    (tmp_path / "some_file").write_text("x")
    res = cli(*args, "--store", tmp_path / "some_file" / "x.db")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "is a file, not a folder" in res.stderr


def test_run_prefix_is_not_a_like_pattern(tmp_path):
    db = tmp_path / "s.db"
    run_id = store_with_one_run(db)
    with Store(db, create=False) as st:
        assert st.run(run_id[:4]).id == run_id
        for pattern in ("_", "%", "_" * 12):
            with pytest.raises(StoreError, match="no run with id starting"):
                st.run(pattern)


def test_new_store_in_read_only_folder(small_fs, read_only):
    folder = small_fs(512)
    read_only(folder)
    with pytest.raises(BatchlabError) as err:
        Store(folder / "s.db")
    text = str(err.value)
    assert "read-only" in text and "locked" not in text
    res = cli("ls", "--store", folder / "s.db")  # reading a missing store: says it is missing
    assert res.returncode == 2 and "does not exist" in res.stderr


def test_store_on_read_only_media_can_be_read_not_written(small_fs, read_only):
    folder = small_fs(1024)
    db = folder / "s.db"
    run_id = store_with_one_run(db)
    before = sha(db)
    read_only(folder)
    with Store(db, create=False) as st:
        assert [r.id for r in st.runs("exp")] == [run_id]
        assert st.run(run_id).summary == {"best_val_acc": 0.5}
    res = cli("ls", "exp", "--store", db)
    assert res.returncode == 0, res.stderr
    assert run_id in res.stdout
    with pytest.raises(StoreError, match="read-only"):
        Store(db)
    assert sha(db) == before


def test_full_disk_while_creating_leaves_nothing_and_says_so(small_fs):
    folder = small_fs(160)
    filler = folder / "filler"
    # leave about 12 KB: less than an empty store needs
    filler.write_bytes(b"x" * (160 * 1024 - 12 * 1024))
    with pytest.raises(BatchlabError) as err:
        Store(folder / "s.db")
    text = str(err.value)
    assert "is full" in text and "free" in text and "locked" not in text
    assert sorted(p.name for p in folder.iterdir()) == ["filler"]  # no store, no -wal/-shm
    filler.unlink()
    with Store(folder / "s.db") as st:  # with room again, the same path works
        assert st.experiments() == []


def damage_runs_table(db, table="runs"):
    """Overwrite the start of every page of ``table`` with garbage: the header and the pages
    ``open`` reads stay intact, so the damage shows only once that table is read."""
    conn = sqlite3.connect(db)
    pages = [p for (p,) in conn.execute("SELECT pageno FROM dbstat WHERE name=?", (table,))]
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    data = bytearray(db.read_bytes())
    for page in pages:
        data[(page - 1) * size:(page - 1) * size + 64] = b"\xde\xad\xbe\xef" * 16
    db.write_bytes(bytes(data))
    return pages


def sweep_is_refused(db, name, sweep=""):
    """``batchlab sweep`` of a tiny spec named ``name`` into the damaged ``db``: exit 2 with
    the damaged-store paragraph, and the file unchanged (refused before anything trained)."""
    toml = db.parent / f"{name}.toml"
    toml.write_text(f'name = "{name}"\n[data]\nname = "digits"\n[model]\nname = "mlp"\n'
                    f'[train]\nepochs = 1\n{sweep}')
    before = sha(db)
    res = cli("sweep", toml, "--store", db)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert "is damaged" in res.stderr and ".recover" in res.stderr
    assert sha(db) == before


def test_garbage_in_the_middle_of_a_store_is_one_paragraph(tmp_path):
    db = tmp_path / "s.db"
    spec = spec_from_dict({"name": "exp", "data": {"name": "digits"}, "model": {"name": "mlp"},
                           "train": {"epochs": 1},
                           "sweep": {"grid": {"train.lr": [0.01 * (i + 1) for i in range(30)]}}})
    with Store(db) as st:
        st.add_experiment("exp", spec.model_dump(mode="json"), plan_runs(spec))
    assert 1 not in damage_runs_table(db)
    for args in (["ls", "exp"], ["show", "abc"]):
        res = cli(*args, "--store", db)
        assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
        assert "is damaged" in res.stderr and "malformed" in res.stderr and ".recover" in res.stderr
    sweep_is_refused(db, "exp", '[sweep.grid]\n"train.lr" = [0.01, 0.02]\n')
    assert not (tmp_path / "s.db.ckpt").exists()  # no empty checkpoint folder left behind
    import batchlab as bl
    with pytest.raises(StoreError, match="is damaged"):
        bl.open(db).runs("exp")


def test_a_sweep_into_a_store_damaged_where_only_writes_reach_trains_nothing(tmp_path):
    # garbage in the metrics table only: opening, planning and claiming never read those
    # pages, so without a check up front the sweep trained, wrote into the damaged file and
    # ended "every run failed" (or exit 0, had its inserts missed the garbage pages)
    db = tmp_path / "s.db"
    run_id = store_with_one_run(db)
    conn = sqlite3.connect(db)
    with conn:
        conn.executemany("INSERT INTO metrics VALUES (?, 'train_loss', ?, 1.0, 0, 0, 0)",
                         [(run_id, step) for step in range(3000)])
    conn.close()  # the last connection's close moves the WAL into the file, to be damaged there
    assert len(damage_runs_table(db, "metrics")) > 3
    sweep_is_refused(db, "new")
