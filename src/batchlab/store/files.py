"""The store's file: its schema, how a new one is created atomically, how one is opened.

A new store is built in a private temporary file and linked into place, so it appears complete
or not at all; every temporary file is removed on any failure (a full disk, a read-only folder).
"""

from __future__ import annotations

import errno
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from batchlab.errors import StoreError
from batchlab.fserrors import disk_error, existing_ancestor

SCHEMA_VERSION = 3
APP = "batchlab"

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE experiments (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, spec_json TEXT NOT NULL,
    created REAL NOT NULL, updated REAL NOT NULL);
CREATE TABLE runs (
    id TEXT PRIMARY KEY, status TEXT NOT NULL, config_json TEXT NOT NULL,
    environment_json TEXT, created REAL NOT NULL, started REAL, finished REAL,
    wall_time REAL, steps INTEGER, total_steps INTEGER, progress_step INTEGER NOT NULL DEFAULT 0,
    error TEXT, summary_json TEXT, heartbeat REAL, owner TEXT, attempts INTEGER NOT NULL DEFAULT 0,
    fingerprint_json TEXT);
CREATE TABLE experiment_runs (
    experiment_id INTEGER NOT NULL REFERENCES experiments(id),
    run_id TEXT NOT NULL REFERENCES runs(id),
    position INTEGER NOT NULL, point_json TEXT NOT NULL,
    PRIMARY KEY (experiment_id, run_id));
CREATE TABLE metrics (
    run_id TEXT NOT NULL, name TEXT NOT NULL, step INTEGER NOT NULL, value REAL,
    epoch REAL NOT NULL, examples INTEGER NOT NULL, wall_time REAL NOT NULL,
    PRIMARY KEY (run_id, name, step)) WITHOUT ROWID;
CREATE TABLE probes (
    id INTEGER PRIMARY KEY, experiment TEXT NOT NULL, kind TEXT NOT NULL, created REAL NOT NULL,
    config_json TEXT NOT NULL, result_json TEXT NOT NULL);
"""

# Each migration takes a store from version N to N + 1, inside one transaction.
MIGRATIONS: dict[int, list[str]] = {
    1: ["ALTER TABLE runs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0",
        "CREATE TABLE probes (id INTEGER PRIMARY KEY, experiment TEXT NOT NULL, kind TEXT NOT NULL, "
        "created REAL NOT NULL, config_json TEXT NOT NULL, result_json TEXT NOT NULL)"],
    2: ["ALTER TABLE runs ADD COLUMN fingerprint_json TEXT"],  # batchlab.fingerprint
}


def check_path(path: Path) -> None:
    """A folder, or a file where a parent folder should be, is not a store path."""
    if path.is_dir():
        raise StoreError(f"--store '{path}' is a folder; give a file name inside it, "
                         f"e.g. --store {path / 'batchlab.db'}.")
    blocker = existing_ancestor(path.parent)
    if not blocker.is_dir():
        raise StoreError(f"--store '{path}' cannot be created: '{blocker}' is a file, "
                         "not a folder. Pass --store with a path in an existing folder.")


def check_folder(path: Path) -> None:
    """A store to be created in a folder that does not exist is refused: batchlab does not make
    the folder, since a mistyped path would start a fresh, empty store and train everything
    again beside the real one. (A path under a file is ``check_path``'s to refuse.)"""
    folder = path.parent
    if not folder.exists() and existing_ancestor(folder).is_dir():
        raise StoreError(
            f"--store '{path}': its folder '{folder}' does not exist, and batchlab does not make "
            "it (a mistyped path would start a fresh, empty store and train everything again). "
            f"Check the path, or create the folder first (mkdir -p '{folder}')."
        )


def writable(path: Path) -> bool:
    """Can this process write the store file and its folder (for the WAL files)?"""
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


# SQLite's primary result codes for a file whose pages do not hold what its header promises
SQLITE_CORRUPT, SQLITE_NOTADB = 11, 26


def damaged(err: sqlite3.Error, path: Path) -> StoreError | None:
    """The paragraph for a store whose pages are garbage (a truncated file, bytes overwritten
    in its middle); None for any other SQLite error (locked, full disk, a bug of ours)."""
    if (getattr(err, "sqlite_errorcode", 0) & 0xFF) not in (SQLITE_CORRUPT, SQLITE_NOTADB):
        return None
    return _damaged(path, str(err))


def _damaged(path: Path, says: str) -> StoreError:
    return StoreError(
        f"store '{path}' cannot be read: it is damaged or not a batchlab store (SQLite says: "
        f"{says}); it was left untouched. Restore it from a backup, or copy what can still be "
        f"read into a new file with `sqlite3 {path} .recover | sqlite3 recovered.db` and pass "
        "--store recovered.db, or pass --store with a new file name."
    )


def quick_check(conn: sqlite3.Connection, path: Path) -> None:
    """Raise the damaged-store paragraph unless every page of the file reads back as SQLite
    wrote it (``PRAGMA quick_check``: every page, no index cross-check; about 0.5 s per 200 MB).
    A sweep calls it before it writes: damage in pages only writes reach (the metrics of old
    runs) would otherwise be met hours into the sweep, with its new runs stored in that file,
    or not at all, since an insert may write beside a garbage page without reading it."""
    found = [row[0] for row in conn.execute("PRAGMA quick_check(1)").fetchall()]
    if found != ["ok"]:
        raise _damaged(path, found[0] if found else "quick_check returned nothing")


@contextmanager
def _translated(conn: sqlite3.Connection) -> Iterator[None]:
    try:
        yield
    except sqlite3.DatabaseError as err:
        error = damaged(err, getattr(conn, "store_path", Path("?")))
        if error is None:
            raise
        raise error from None


class StoreCursor(sqlite3.Cursor):
    """A cursor whose every read and write turns a damaged page into a StoreError paragraph.
    Damage can sit in any page, so it surfaces at whichever query first touches it (``ls``
    reads other pages than ``sweep``); guarding the cursor covers every caller, including
    those that query ``store.conn`` directly."""

    def execute(self, *args: Any) -> StoreCursor:
        with _translated(self.connection):
            return super().execute(*args)

    def executemany(self, *args: Any) -> StoreCursor:
        with _translated(self.connection):
            return super().executemany(*args)

    def fetchone(self) -> Any:
        with _translated(self.connection):
            return super().fetchone()

    def fetchmany(self, *args: Any) -> list[Any]:
        with _translated(self.connection):
            return super().fetchmany(*args)

    def fetchall(self) -> list[Any]:
        with _translated(self.connection):
            return super().fetchall()

    def __next__(self) -> Any:
        with _translated(self.connection):
            return super().__next__()


class StoreConnection(sqlite3.Connection):
    """A connection whose cursors are ``StoreCursor``s (``execute`` on the connection too)."""

    store_path: Path

    def cursor(self, factory: Any = StoreCursor) -> Any:  # type: ignore[override]
        return super().cursor(factory)

    def execute(self, *args: Any) -> StoreCursor:  # type: ignore[override]
        return self.cursor().execute(*args)

    def executemany(self, *args: Any) -> StoreCursor:  # type: ignore[override]
        return self.cursor().executemany(*args)

    def __exit__(self, *exc: Any) -> Any:  # the COMMIT of ``with conn:`` reads pages too
        with _translated(self):
            return super().__exit__(*exc)


def _open(target: str | Path, path: Path, **options: Any) -> StoreConnection:
    conn = sqlite3.connect(target, isolation_level=None, factory=StoreConnection, **options)
    conn.store_path = path
    return conn


def store_exists(path: Path) -> bool:
    """Whether a store file is at ``path`` (an empty file is a placeholder, not yet a store)."""
    return path.is_file() and path.stat().st_size > 0


def in_memory_copy(conn: StoreConnection) -> StoreConnection:
    """A copy in memory of the store ``conn`` reads: an older schema opened read-only is
    upgraded there, so the file itself stays as it is."""
    copy = _open(":memory:", conn.store_path)
    conn.backup(copy)
    return copy


def connect(path: Path, readonly: bool) -> StoreConnection:
    """A connection in autocommit mode; ``readonly`` opens files on read-only media too and
    never makes a file beside the store. A damaged store raises StoreError from whichever
    query first reads a damaged page."""
    if not readonly:
        return _open(path, path, timeout=30.0)
    uri = path.absolute().as_uri()
    if not path.with_name(path.name + "-wal").exists():
        # no process has the store open in WAL mode (a writer keeps its -wal file while
        # open): every committed row is in the file itself. A mode=ro connection would still
        # create an empty -wal and -shm that it can never remove; immutable reads the file
        # alone. Readers open one connection per request, so a sweep starting later is seen
        # by the next one, which finds its -wal and takes the mode=ro branch.
        return _open(f"{uri}?immutable=1", path, uri=True)
    conn = _open(f"{uri}?mode=ro", path, uri=True, timeout=30.0)
    try:
        conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        return conn
    except StoreError:
        conn.close()
        raise
    except sqlite3.OperationalError:
        # a WAL store on read-only media: its -shm file cannot be made. Nobody can write
        # there either, so reading it as immutable is safe.
        conn.close()
        return _open(f"{uri}?immutable=1", path, uri=True)


def create_file(path: Path) -> None:
    """Build the schema in a private file, then link it into place: a store appears complete
    or not at all, so two sweeps starting at once on a new path never see a half-made file
    (the loser of the race simply opens the winner's store). On any failure (a full disk, a
    read-only folder) every temporary file is removed and DiskError says why."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.new")
    leftovers = [tmp, *(tmp.with_name(tmp.name + s) for s in ("-wal", "-shm", "-journal"))]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not os.access(path.parent, os.W_OK):  # SQLite would only say "unable to open"
            raise OSError(errno.EACCES, "folder is not writable", str(path))
        _build(tmp)
        if path.exists() and path.stat().st_size == 0:
            os.replace(tmp, path)  # an empty placeholder file: take its place
        else:
            os.link(tmp, path)  # fails if another process created it meanwhile
    except FileExistsError:
        pass
    except (OSError, sqlite3.Error) as err:
        raise disk_error(err, path, f"creating the store '{path}'", "run the command again") from None
    finally:
        for p in leftovers:
            if p.exists():  # (unlinking a missing file on read-only media raises EROFS)
                p.unlink(missing_ok=True)


def _build(tmp: Path) -> None:
    """Write a complete empty store to ``tmp``, in WAL mode, with nothing left in a WAL."""
    conn = sqlite3.connect(tmp, isolation_level=None)
    try:
        # built with a rollback journal: the finished file holds every page itself, so a
        # failed write cannot leave the schema behind in a WAL file that gets lost
        conn.execute("BEGIN")
        for statement in SCHEMA.strip().split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.executemany(
            "INSERT INTO meta(key, value) VALUES (?, ?)",
            [("app", APP), ("schema_version", str(SCHEMA_VERSION)), ("created", str(time.time()))],
        )
        conn.execute("COMMIT")
        if conn.execute("PRAGMA journal_mode=WAL").fetchone()[0] != "wal":
            raise sqlite3.OperationalError("database or disk is full")  # could not switch
    finally:
        conn.close()
    if tmp.with_name(tmp.name + "-wal").exists():  # closing could not fold the WAL back
        raise OSError(errno.ENOSPC, "the new store could not be written completely", str(tmp))
