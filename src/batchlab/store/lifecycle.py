"""Writes that undo training: reset a run to pending, remove runs or whole experiments, and
the fingerprint kept beside each run (what its data and model code hashed to).

Each function is one transaction, so an interrupted call leaves the store as it was or fully
changed. Checkpoint files live beside the store (``checkpoint_file``), not in it: callers
delete them after the transaction, so a crash in between leaves at worst an orphan file that
is never used (a checkpoint is only trusted when the store holds its rows).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchlab.errors import StoreError
from batchlab.events import PENDING
from batchlab.store.sqlite import Store


def checkpoint_dir(store_path: Path) -> Path:
    """The folder of a store's epoch checkpoints: ``batchlab.db`` -> ``batchlab.db.ckpt``."""
    return store_path.with_name(store_path.name + ".ckpt")


def checkpoint_file(store_path: Path, run_id: str) -> Path:
    return checkpoint_dir(store_path) / f"{run_id}.pt"


def fingerprints(store: Store, run_ids: Iterable[str]) -> dict[str, dict[str, Any] | None]:
    """The stored fingerprint of each run (None when the run has none recorded yet)."""
    out: dict[str, dict[str, Any] | None] = {}
    for rid in run_ids:
        row = store.conn.execute("SELECT fingerprint_json FROM runs WHERE id=?", (rid,)).fetchone()
        out[rid] = json.loads(row[0]) if row and row[0] else None
    return out


def set_fingerprints(store: Store, values: dict[str, dict[str, Any]]) -> None:
    """Record each run's fingerprint (run id -> fingerprint dict)."""
    with store.conn:
        store.conn.execute("BEGIN IMMEDIATE")
        store.conn.executemany(
            "UPDATE runs SET fingerprint_json=? WHERE id=?",
            [(json.dumps(fp, sort_keys=True), rid) for rid, fp in values.items()])


def reset_runs(store: Store, run_ids: Iterable[str]) -> None:
    """Forget what the runs recorded (metrics, summary, timings) and make them pending again,
    so the next sweep trains them from scratch. Their config and experiment links stay."""
    ids = [(rid,) for rid in run_ids]
    with store.conn:
        store.conn.execute("BEGIN IMMEDIATE")
        store.conn.executemany("DELETE FROM metrics WHERE run_id=?", ids)
        store.conn.executemany(
            "UPDATE runs SET status=?, environment_json=NULL, started=NULL, finished=NULL, "
            "wall_time=NULL, steps=NULL, total_steps=NULL, progress_step=0, error=NULL, "
            "summary_json=NULL, attempts=0 WHERE id=?", [(PENDING, rid) for (rid,) in ids])


@dataclass(frozen=True)
class Removal:
    """What ``plan_removal`` found to delete: the experiment (if any), its probes, the runs that
    go (runs another experiment still uses are kept) and their metric rows."""

    experiment: str | None
    run_ids: list[str]
    kept_shared: int  # runs of the experiment kept because another experiment uses them
    metric_rows: int
    probes: int

    def describe(self) -> str:
        what = f"experiment '{self.experiment}'" if self.experiment else f"run {self.run_ids[0]}"
        parts = [f"{len(self.run_ids)} run{'s' if len(self.run_ids) != 1 else ''}",
                 f"{self.metric_rows} metric rows"]
        if self.probes:
            parts.append(f"{self.probes} probe result{'s' if self.probes != 1 else ''}")
        one = self.kept_shared == 1
        shared = (f"; {self.kept_shared} run{'' if one else 's'} shared with another experiment "
                  f"{'stays' if one else 'stay'}" if self.kept_shared else "")
        return f"{what}: {', '.join(parts)} and their checkpoints{shared}"


def plan_removal(store: Store, target: str) -> Removal:
    """What removing ``target`` deletes: an experiment by exact name, else a run by id or unique
    id prefix. Raises StoreError naming both lookups when nothing matches."""
    exp = store.conn.execute("SELECT id FROM experiments WHERE name=?", (target,)).fetchone()
    if exp is not None:
        ids = [r[0] for r in store.conn.execute(
            "SELECT run_id FROM experiment_runs WHERE experiment_id=? ORDER BY position", exp)]
        shared = {r[0] for r in store.conn.execute(
            "SELECT DISTINCT run_id FROM experiment_runs WHERE experiment_id<>?", exp)}
        mine = [rid for rid in ids if rid not in shared]
        probes = store.conn.execute(
            "SELECT COUNT(*) FROM probes WHERE experiment=?", (target,)).fetchone()[0]
        return Removal(target, mine, len(ids) - len(mine), _rows(store, mine), probes)
    probes = store.conn.execute("SELECT COUNT(*) FROM probes WHERE experiment=?", (target,)).fetchone()[0]
    if probes:  # an experiment only probes were stored under
        return Removal(target, [], 0, 0, probes)
    matches = [r[0] for r in store.conn.execute(
        "SELECT id FROM runs WHERE id LIKE ? || '%'", (target,))] if target else []
    if len(matches) != 1:
        names = ", ".join(e.name for e in store.experiments()) or "none"
        what = "no experiment or run" if not matches else f"{len(matches)} runs and no experiment"
        raise StoreError(
            f"{what} matches '{target}' in '{store.path}'; give an experiment name "
            f"(experiments: {names}) or a run id (or unique prefix) from 'batchlab ls EXPERIMENT'.")
    return Removal(None, matches, 0, _rows(store, matches), 0)


def _rows(store: Store, run_ids: list[str]) -> int:
    return sum(store.count_metric_rows(rid) for rid in run_ids)


def remove(store: Store, removal: Removal) -> None:
    """Delete what ``plan_removal`` found, in one transaction."""
    ids = [(rid,) for rid in removal.run_ids]
    with store.conn:
        store.conn.execute("BEGIN IMMEDIATE")
        if removal.experiment is not None:
            for (exp_id,) in store.conn.execute(  # none for an experiment of probes only
                    "SELECT id FROM experiments WHERE name=?", (removal.experiment,)).fetchall():
                store.conn.execute("DELETE FROM experiment_runs WHERE experiment_id=?", (exp_id,))
                store.conn.execute("DELETE FROM experiments WHERE id=?", (exp_id,))
            store.conn.execute("DELETE FROM probes WHERE experiment=?", (removal.experiment,))
        store.conn.executemany("DELETE FROM metrics WHERE run_id=?", ids)
        store.conn.executemany("DELETE FROM experiment_runs WHERE run_id=?", ids)
        store.conn.executemany("DELETE FROM runs WHERE id=?", ids)
