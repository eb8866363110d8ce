"""The metric store: one SQLite file in WAL mode, with a schema version.

Tables: ``experiments`` (a named sweep and its spec), ``runs`` (id = hash of the resolved run
config, status, config, environment, timings, summary of final/best metrics, the fingerprint of
its data and model code),
``experiment_runs`` (which runs an experiment planned, with their sweep point: one run can
serve several experiments) and ``metrics`` (one row per run, name and step; NaN is kept as
NULL because SQLite turns NaN into NULL, +-inf are kept as they are).

Only the driver process writes; the trainer never sees this module.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from batchlab.errors import BatchlabError, StoreError
from batchlab.events import (
    INTERRUPTED,
    PENDING,
    PRUNED,
    RUNNING,
    Event,
    MetricRows,
    RunEnded,
    RunStarted,
)
from batchlab.fserrors import disk_error, error_number
from batchlab.store.files import (
    APP,
    MIGRATIONS,
    SCHEMA_VERSION,
    check_path,
    connect,
    create_file,
    in_memory_copy,
    quick_check,
    store_exists,
    writable,
)
from batchlab.store.records import Experiment, ProbeRecord, RunRecord, Series


def _loads(text: str | None) -> dict[str, Any]:
    return json.loads(text) if text else {}


_INSERT_PROBE = ("INSERT INTO probes(experiment, kind, created, config_json, result_json) "
                 "VALUES (?, ?, ?, ?, ?)")


def _dumps(obj: Any) -> str:
    # json cannot write NaN/inf as standard JSON; store them as strings then
    return json.dumps(obj, sort_keys=True, default=str, allow_nan=True)


class Store:
    """A batchlab store file. ``Store(path)`` opens it for writing and creates it when missing;
    ``Store(path, create=False)`` only reads (ls, show, report, export) and also opens a store on
    read-only media. ``Store(path, create=False, read_only=True)`` always connects read-only
    (SQLite ``mode=ro``), so no statement can write, even on a writable file (the dashboard).
    A file that is not a batchlab store is never modified: it is checked before anything is
    written to it. An older schema is upgraded in the file, or, opened read-only, in a copy in
    memory (the file stays as it is)."""

    def __init__(self, path: str | Path, *, create: bool = True, read_only: bool = False) -> None:
        if read_only and create:
            raise ValueError("a read-only store cannot be created: pass create=False")
        self.path = Path(path)
        check_path(self.path)
        exists = store_exists(self.path)
        if not exists and not create:
            # an empty file is a placeholder (touch, mkstemp): "does not exist" would deny it
            missing = "is an empty file, not a store yet" if self.path.is_file() else "does not exist"
            raise StoreError(f"store '{self.path}' {missing}; run a sweep first or pass --store PATH.")
        if not exists:
            create_file(self.path)
        self._check_header()
        self.readonly = read_only or (not create and not writable(self.path))
        if create and not writable(self.path):
            raise StoreError(
                f"store '{self.path}' cannot be written: it or its folder is read-only. Pass "
                "--store with a file in a folder you can write to (copy the store there to add to it)."
            )
        self.conn = connect(self.path, self.readonly)
        try:
            # read before any write: a foreign file must come out bit-identical
            version = self._check_schema()
            if not self.readonly:
                # stores are created in WAL mode; switching modes needs an exclusive lock that
                # a concurrent sweep may hold, so only an old non-WAL file is switched
                if self.conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    self.conn.execute("PRAGMA journal_mode=WAL")
                self.conn.execute("PRAGMA synchronous=NORMAL")
                self.conn.execute("PRAGMA foreign_keys=ON")
            if version < SCHEMA_VERSION:
                if self.readonly:  # read-only media, a dry run, the dashboard: the file stays old
                    old, self.conn = self.conn, in_memory_copy(self.conn)
                    old.close()
                self._migrate(version)
        except BatchlabError:
            self.conn.close()
            raise
        except sqlite3.OperationalError as err:  # locked, or no room to write
            self.conn.close()
            if error_number(err) is not None:
                raise disk_error(err, self.path, "opening the store") from None
            hint = ("Another process holds it locked; retry when it is done" if "locked" in str(err)
                    else "Check the file and its folder")
            raise StoreError(f"store '{self.path}' could not be opened: {err}. {hint}, or pass "
                             "another --store.") from None
        except sqlite3.DatabaseError as err:
            self.conn.close()
            raise StoreError(self._not_ours(f"SQLite says: {err}")) from None

    # ------------------------------------------------------------------ schema
    def _not_ours(self, why: str) -> str:
        return (
            f"'{self.path}' is not a batchlab store ({why}); it was left untouched. "
            "Pass --store with a new file name or the path of an existing batchlab.db."
        )

    def _writable(self) -> bool:
        """Can this process write the store file and its folder (for the WAL files)?"""
        return os.access(self.path, os.W_OK) and os.access(self.path.parent, os.W_OK)

    def _check_header(self) -> None:
        with open(self.path, "rb") as f:
            if f.read(16) != b"SQLite format 3\x00":
                raise StoreError(self._not_ours("not an SQLite database"))

    def _check_schema(self) -> int:
        """Read-only check that this is a batchlab store we understand; its schema version."""
        tables = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "meta" not in tables:
            raise StoreError(self._not_ours("an SQLite file without batchlab's tables"))
        meta = dict(self.conn.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("app") != APP:
            raise StoreError(self._not_ours("its meta table does not name batchlab"))
        version = int(meta.get("schema_version", "0"))
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"store '{self.path}' has schema version {version}, newer than this batchlab "
                f"understands ({SCHEMA_VERSION}); it was left untouched. Upgrade batchlab "
                "(pip install -U batchlab) or use another --store."
            )
        return version

    def _migrate(self, version: int) -> None:
        with self.transaction(f"upgrading schema version {version}"):
            for v in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[v]:
                    self.conn.execute(statement)
            self.conn.execute("UPDATE meta SET value=? WHERE key='schema_version'",
                              (str(SCHEMA_VERSION),))

    def close(self) -> None:
        self.conn.close()

    def check_intact(self) -> None:
        """StoreError (the damaged-store paragraph) unless every page of the file is sound;
        reads the whole file, so it is for the start of a sweep, not for every open."""
        quick_check(self.conn, self.path)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ writes
    @contextmanager
    def transaction(self, doing: str) -> Iterator[None]:
        """One write transaction; a full disk or read-only file becomes a DiskError paragraph
        (SQLite rolls the transaction back, so nothing stored before is lost)."""
        try:
            with self.conn:
                self.conn.execute("BEGIN IMMEDIATE")
                yield
        except sqlite3.OperationalError as err:
            if error_number(err) is None:
                raise
            raise disk_error(err, self.path, f"{doing} in the store") from None

    def add_experiment(self, name: str, spec: dict[str, Any], runs: Iterable[Any]) -> None:
        """Record an experiment and its planned runs (``RunSpec``s); existing runs are kept."""
        now = time.time()
        with self.transaction(f"recording experiment '{name}'"):
            self.conn.execute(
                "INSERT INTO experiments(name, spec_json, created, updated) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET spec_json=excluded.spec_json, updated=excluded.updated",
                (name, _dumps(spec), now, now),
            )
            (exp_id,) = self.conn.execute("SELECT id FROM experiments WHERE name=?", (name,)).fetchone()
            for position, run in enumerate(runs):
                self.conn.execute(
                    "INSERT OR IGNORE INTO runs(id, status, config_json, created) VALUES (?, ?, ?, ?)",
                    (run.run_id, PENDING, _dumps(run.config.model_dump(mode="json")), now),
                )
                self.conn.execute(
                    "INSERT INTO experiment_runs(experiment_id, run_id, position, point_json) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET position=excluded.position, "
                    "point_json=excluded.point_json",
                    (exp_id, run.run_id, position, _dumps(run.point)),
                )

    def set_points(self, experiment: str, points: dict[str, dict[str, Any]]) -> None:
        """Replace the sweep point of these runs (run id -> point) in ``experiment``."""
        with self.transaction(f"recording experiment '{experiment}'"):
            self.conn.executemany(
                "UPDATE experiment_runs SET point_json=? WHERE run_id=? AND experiment_id="
                "(SELECT id FROM experiments WHERE name=?)",
                [(_dumps(point), run_id, experiment) for run_id, point in points.items()])

    def record(self, event: Event) -> None:
        """Apply one trainer event. Each call is one transaction (rows arrive in batches)."""
        now = time.time()
        with self.transaction(f"recording run {event.run_id}"):
            if isinstance(event, MetricRows):
                self.conn.executemany(
                    "INSERT OR REPLACE INTO metrics(run_id, name, step, value, epoch, examples, "
                    "wall_time) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(event.run_id, *row) for row in event.rows],
                )
                self.conn.execute(
                    "UPDATE runs SET progress_step=MAX(progress_step, ?), heartbeat=? WHERE id=?",
                    (event.step, now, event.run_id),
                )
            elif isinstance(event, RunStarted):
                # rows past the checkpoint belong to the attempt that was cut off: they are redone
                self.conn.execute(
                    "DELETE FROM metrics WHERE run_id=? AND step>?", (event.run_id, event.resumed_from)
                )
                self.conn.execute(
                    "UPDATE runs SET status=?, environment_json=?, started=COALESCE(started, ?), "
                    "total_steps=?, progress_step=?, heartbeat=?, error=NULL, attempts=attempts+1 "
                    "WHERE id=?",
                    (RUNNING, _dumps(event.environment), now, event.total_steps,
                     event.resumed_from, now, event.run_id),
                )
            elif isinstance(event, RunEnded):
                self.conn.execute(
                    "UPDATE runs SET status=?, finished=?, wall_time=?, steps=?, error=?, "
                    "summary_json=?, heartbeat=? WHERE id=?",
                    (event.status, now, event.wall_time, event.steps, event.error,
                     _dumps(event.summary), now, event.run_id),
                )

    def add_probe(self, experiment: str, kind: str, config: dict[str, Any],
                  result: dict[str, Any]) -> int:
        """Store one probe result under an experiment name; returns its id."""
        with self.transaction(f"recording a {kind} probe"):
            cur = self.conn.execute(
                _INSERT_PROBE, (experiment, kind, time.time(), _dumps(config), _dumps(result)))
            return int(cur.lastrowid)

    def add_probes(self, experiment: str, probes: Iterable[tuple[str, dict[str, Any], dict[str, Any]]]
                   ) -> None:
        """Store several probe results, each ``(kind, config, result)``, in one transaction."""
        with self.transaction("recording probes"):
            self.conn.executemany(_INSERT_PROBE, [(experiment, kind, time.time(), _dumps(config),
                                                   _dumps(result)) for kind, config, result in probes])

    def probes(self, experiment: str | None = None, kind: str | None = None) -> list[ProbeRecord]:
        """Probe results, oldest first, optionally of one experiment and/or kind."""
        rows = self.conn.execute(
            "SELECT id, experiment, kind, created, config_json, result_json FROM probes "
            "WHERE (? IS NULL OR experiment=?) AND (? IS NULL OR kind=?) ORDER BY id",
            (experiment, experiment, kind, kind)).fetchall()
        return [ProbeRecord(i, e, k, c, _loads(cfg), _loads(res)) for i, e, k, c, cfg, res in rows]

    def mark_interrupted(self, run_ids: Iterable[str]) -> None:
        """Runs left RUNNING by a driver that stops: they resume from their checkpoint later."""
        with self.transaction("marking runs interrupted"):
            self.conn.executemany(
                "UPDATE runs SET status=? WHERE id=? AND status=?",
                [(INTERRUPTED, rid, RUNNING) for rid in run_ids],
            )

    def mark_pruned(self, run_ids: Iterable[str], reason: str) -> list[str]:
        """Runs paused by successive halving (interrupted or pending, never one a sweep is
        training, never a final one) become ``pruned`` with ``reason`` as their error text;
        returns the ids that did."""
        done = []
        with self.transaction("marking runs pruned"):
            for rid in run_ids:
                cur = self.conn.execute(
                    "UPDATE runs SET status=?, error=?, finished=? WHERE id=? AND status IN (?, ?)",
                    (PRUNED, reason, time.time(), rid, INTERRUPTED, PENDING))
                if cur.rowcount:
                    done.append(rid)
        return done

    # ------------------------------------------------------------------ reads
    def experiments(self) -> list[Experiment]:
        """Every experiment, oldest first: those a sweep or a tracked run recorded, and those
        only probes were stored under (``bl.lr_find(store=..., experiment=...)``), which have
        no spec and no runs."""
        out = []
        for exp_id, name, spec, created, updated in self.conn.execute(
            "SELECT id, name, spec_json, created, updated FROM experiments ORDER BY created"
        ):
            counts = dict(self.conn.execute(
                "SELECT r.status, COUNT(*) FROM runs r JOIN experiment_runs er ON er.run_id=r.id "
                "WHERE er.experiment_id=? GROUP BY r.status", (exp_id,)).fetchall())
            out.append(Experiment(name, _loads(spec), created, updated, counts))
        known = {e.name for e in out}
        for name, created, updated in self.conn.execute(
                "SELECT experiment, MIN(created), MAX(created) FROM probes GROUP BY experiment"):
            if name not in known:
                out.append(Experiment(name, {}, created, updated, {}))
        return sorted(out, key=lambda e: e.created)

    def _record(self, row: tuple[Any, ...], point: str | None) -> RunRecord:
        (rid, status, config, env, created, started, finished, wall, steps, total, progress,
         attempts, error, summary) = row
        return RunRecord(rid, status, _loads(config), _loads(env), created, started, finished,
                         wall, steps, total, progress, attempts, error, _loads(summary),
                         _loads(point))

    _COLUMNS = ("r.id, r.status, r.config_json, r.environment_json, r.created, r.started, "
                "r.finished, r.wall_time, r.steps, r.total_steps, r.progress_step, r.attempts, r.error, "
                "r.summary_json")

    def runs(self, experiment: str | None = None) -> list[RunRecord]:
        """Runs of one experiment in sweep order, or every run when ``experiment`` is None."""
        if experiment is None:
            rows = self.conn.execute(
                f"SELECT {self._COLUMNS}, NULL FROM runs r ORDER BY r.created, r.id").fetchall()
        else:
            if not self.conn.execute("SELECT 1 FROM experiments WHERE name=? UNION ALL SELECT 1 "
                                     "FROM probes WHERE experiment=? LIMIT 1",
                                     (experiment, experiment)).fetchone():
                names = ", ".join(e.name for e in self.experiments()) or "none yet"
                raise StoreError(
                    f"no experiment named '{experiment}' in '{self.path}' (experiments: {names})."
                )
            rows = self.conn.execute(
                f"SELECT {self._COLUMNS}, er.point_json FROM runs r JOIN experiment_runs er "
                "ON er.run_id=r.id JOIN experiments e ON e.id=er.experiment_id WHERE e.name=? "
                "ORDER BY er.position", (experiment,)).fetchall()
        return [self._record(row[:-1], row[-1]) for row in rows]

    def run(self, run_id: str) -> RunRecord:
        """One run by id or unique id prefix."""
        rows = self.conn.execute(
            f"SELECT {self._COLUMNS}, NULL FROM runs r WHERE substr(r.id, 1, ?) = ?",
            (len(run_id), run_id)).fetchall()  # a prefix, never a LIKE pattern ('_' is a wildcard)
        if len(rows) != 1:
            what = "no run" if not rows else f"{len(rows)} runs"
            raise StoreError(f"{what} with id starting '{run_id}' in '{self.path}'; "
                             "'batchlab ls' lists the run ids.")
        return self._record(rows[0][:-1], None)

    def metric_names(self, run_id: str) -> list[str]:
        return [r[0] for r in self.conn.execute(
            "SELECT DISTINCT name FROM metrics WHERE run_id=? ORDER BY name", (run_id,))]

    def metrics(self, run_id: str, names: Iterable[str] | None = None,
                after: int | None = None) -> dict[str, Series]:
        """Every (or the named) metric of a run as numpy series; NULL values read back as NaN.
        ``after``: only the rows past that step (a live view fetching what is new)."""
        wanted = list(names) if names is not None else self.metric_names(run_id)
        # a plain range on the key's last column, so the (run, name, step) index finds the rows
        since, args = ("AND step>? ", (after,)) if after is not None else ("", ())
        out = {}
        for name in wanted:
            rows = self.conn.execute(
                "SELECT step, value, epoch, examples, wall_time FROM metrics "
                f"WHERE run_id=? AND name=? {since}ORDER BY step", (run_id, name, *args)).fetchall()
            arr = np.array(rows, dtype=float).reshape(-1, 5)
            out[name] = Series(arr[:, 0].astype(np.int64), arr[:, 1], arr[:, 2],
                               arr[:, 3].astype(np.int64), arr[:, 4])
        return out

    def count_metric_rows(self, run_id: str) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM metrics WHERE run_id=?", (run_id,)).fetchone()[0]
