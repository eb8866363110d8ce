"""Runs that batchlab did not plan: recorded by ``bl.track`` or imported from other tools' logs.

A sweep adds its planned runs with ``Store.add_experiment``; that call also replaces the
experiment's spec and numbers the runs from 0. A tracked run instead joins an experiment as it
is (created with a small marker spec when missing, never overwriting a sweep's spec) and is
placed after the runs already there. Its id comes from the caller and is never a planned
run's id (see ``batchlab.track.tracked_run_id``), so a sweep never skips or retrains it.
"""

from __future__ import annotations

import time
from typing import Any

from batchlab.events import PENDING
from batchlab.store.sqlite import Store, _dumps

TRACKED_SPEC_KEY = "tracked"  # experiments created here carry {"tracked": true} as their spec


def add_tracked_run(store: Store, experiment: str, run_id: str, config: dict[str, Any],
                    point: dict[str, Any]) -> None:
    """Add run ``run_id`` with ``config`` to ``experiment`` (created when missing), in one
    transaction. A run with the same id (the same tracked name tracked again, or a log folder
    imported again) is reset: its old metrics are removed and its config replaced."""
    now = time.time()
    with store.conn:
        store.conn.execute("BEGIN IMMEDIATE")
        store.conn.execute(
            "INSERT INTO experiments(name, spec_json, created, updated) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(name) DO UPDATE SET updated=excluded.updated",
            (experiment, _dumps({"name": experiment, TRACKED_SPEC_KEY: True}), now, now))
        (exp_id,) = store.conn.execute(
            "SELECT id FROM experiments WHERE name=?", (experiment,)).fetchone()
        store.conn.execute("DELETE FROM metrics WHERE run_id=?", (run_id,))
        store.conn.execute(
            "INSERT INTO runs(id, status, config_json, created) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET status=excluded.status, config_json=excluded.config_json, "
            "started=NULL, finished=NULL, wall_time=NULL, steps=NULL, error=NULL, summary_json=NULL, "
            "progress_step=0, attempts=0",
            (run_id, PENDING, _dumps(config), now))
        (position,) = store.conn.execute(
            "SELECT COALESCE(MAX(position) + 1, 0) FROM experiment_runs WHERE experiment_id=?",
            (exp_id,)).fetchone()
        store.conn.execute(
            "INSERT INTO experiment_runs(experiment_id, run_id, position, point_json) "
            "VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET point_json=excluded.point_json",
            (exp_id, run_id, position, _dumps(point)))
