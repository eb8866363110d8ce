"""Who trains which run: atomic claims with heartbeats, so sweeps can share one store.

A driver claims a run (status -> running, owner = this driver) in one write transaction before
training it, and keeps a heartbeat on every run it owns. Another driver may take a run over only
when its claim is stale: the heartbeat is older than ``stale_after`` seconds, or the owner is a
process on this machine that no longer exists (so re-running right after a crash never waits).
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
import uuid

from batchlab.events import FINAL_STATUSES, INTERRUPTED, RUNNING
from batchlab.store.sqlite import Store

STALE_AFTER_S = 60.0
HEARTBEAT_EVERY_S = 5.0


def new_owner() -> str:
    """A driver's identity: host, pid and a random suffix (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_is_dead(owner: str | None) -> bool:
    """True when ``owner`` is a process on this host that no longer runs."""
    if not owner:
        return True
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False  # another machine: only its heartbeat can tell
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def held_by_another(status: str, current: str | None, beat: float | None, owner: str | None,
                    now: float, stale_after: float = STALE_AFTER_S) -> bool:
    """Whether a run stored with ``status``, owner ``current`` and heartbeat ``beat`` is being
    trained by a live driver other than ``owner`` (None: any driver) at time ``now``: its claim
    cannot be taken over. Pure, so a dry run reads the same answer ``claim`` acts on."""
    if status != RUNNING or (owner is not None and current == owner):
        return False
    fresh = beat is not None and beat >= now - stale_after
    return fresh and not owner_is_dead(current)


def held_runs(store: Store, run_ids: list[str], stale_after: float = STALE_AFTER_S) -> set[str]:
    """The ids among ``run_ids`` that a live sweep holds now (``held_by_another``); reads only."""
    now, held = time.time(), set()
    for run_id in run_ids:
        row = store.conn.execute(
            "SELECT status, owner, heartbeat FROM runs WHERE id=?", (run_id,)).fetchone()
        if row is not None and held_by_another(*row, None, now, stale_after):
            held.add(run_id)
    return held


def claim(store: Store, run_id: str, owner: str, stale_after: float = STALE_AFTER_S) -> str:
    """Try to claim ``run_id`` for ``owner``. Returns "claimed", "final" (nothing to do) or
    "busy" (a live driver trains it)."""
    now = time.time()
    with store.transaction(f"claiming run {run_id}"):
        row = store.conn.execute(
            "SELECT status, owner, heartbeat FROM runs WHERE id=?", (run_id,)).fetchone()
        if row is None or row[0] in FINAL_STATUSES:
            return "final"
        if held_by_another(*row, owner, now, stale_after):
            return "busy"
        store.conn.execute(
            "UPDATE runs SET status=?, owner=?, heartbeat=? WHERE id=?", (RUNNING, owner, now, run_id))
        return "claimed"


def abandoned(store: Store) -> set[str]:
    """Ids of runs still marked running whose process on this host is gone (killed with
    ``kill -9``, or the machine's power cut): nothing will ever end them, so they read as
    interrupted. A run owned by another host cannot be judged from here and is left out."""
    rows = store.conn.execute(
        "SELECT id, owner FROM runs WHERE status=? AND owner IS NOT NULL", (RUNNING,)).fetchall()
    return {rid for rid, owner in rows if owner_is_dead(owner)}


def release(store: Store, owner: str) -> None:
    """Runs this driver still holds as running become interrupted (they resume later)."""
    with store.transaction("releasing this sweep's runs"):
        store.conn.execute(
            "UPDATE runs SET status=? WHERE owner=? AND status=?", (INTERRUPTED, owner, RUNNING))


class Heartbeat:
    """Refreshes the heartbeat of every run ``owner`` holds, from a thread with its own
    connection, so a long step never makes a live claim look stale."""

    def __init__(self, path: os.PathLike[str] | str, owner: str,
                 every: float = HEARTBEAT_EVERY_S) -> None:
        self.path, self.owner, self.every = path, owner, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="batchlab-heartbeat", daemon=True)

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            while not self._stop.wait(self.every):
                try:
                    conn.execute("UPDATE runs SET heartbeat=? WHERE owner=? AND status=?",
                                 (time.time(), self.owner, RUNNING))
                except sqlite3.OperationalError:
                    continue  # store busy: the next beat will do
                except sqlite3.DatabaseError:
                    return  # a damaged store: the sweep's own next query says so, in one paragraph
        finally:
            conn.close()

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
