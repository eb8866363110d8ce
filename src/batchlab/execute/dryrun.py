"""What a sweep would do with each of its runs, without doing it (``batchlab sweep --dry-run``).

``dry_run`` checks the spec as ``prepare_sweep`` does (data load, models build, schedules,
batch sizes, halving), except that ``lr = "auto"`` is never measured: an LR an earlier sweep
found (``known_auto_lrs``) is used, any other stays "auto". Then it reads the store, when
there is one, and decides each run with the pieces ``run_sweep`` acts on: ``stale_runs``
(train again because the data or code changed, or ``--rerun``), ``FINAL_STATUSES`` (skip),
``held_by_another`` (a live sweep trains it: wait) and ``resumable`` (the checkpoint step a
run resumes from). Nothing is written: no store file, no row, no checkpoint folder.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchlab.events import FINAL_STATUSES, PENDING
from batchlab.execute.base import Executor
from batchlab.execute.datacache import DataCache
from batchlab.execute.freshness import reason_lines, stale_runs
from batchlab.execute.halving import halving_note
from batchlab.execute.mixed import label_sections
from batchlab.execute.sweep import (
    PreparedSweep,
    check_workers_can_import,
    known_auto_lrs,
    prepare_sweep,
)
from batchlab.fingerprint import Fingerprint, changed_parts
from batchlab.plan import RunSpec
from batchlab.spec import Spec
from batchlab.store import RunRecord, Store
from batchlab.store.claims import held_runs
from batchlab.store.files import store_exists
from batchlab.store.lifecycle import checkpoint_file, fingerprints
from batchlab.train.checkpoint import CheckpointLocation, resumable

# what a run would do, as the count line groups them
TRAIN, SKIP, RESUME, AGAIN = "to train", "finished", "to resume", "to train again"
WAIT = "held by another sweep"
UNMEASURED = "auto (found when the sweep starts)"


@dataclass(frozen=True)
class PlannedRun:
    """One run of the plan: the run, what the sweep would do (``kind``: TRAIN, SKIP, ...),
    that in words ("resume from step 40"), and whether its ``lr = "auto"`` is still unmeasured
    (then its id follows from the LR the sweep finds, so the one here is not its id)."""

    run: RunSpec
    kind: str
    would: str
    unmeasured: bool = False


@dataclass(frozen=True)
class DryRun:
    """A sweep's plan: its runs in sweep order and the notes the sweep would print."""

    experiment: str
    runs: list[PlannedRun]
    notes: list[str]

    def count(self) -> str:
        """'12 runs: 8 to train, 3 finished, 1 to resume' (kinds in that order, none left out)."""
        kinds = Counter(p.kind for p in self.runs)
        parts = [f"{kinds[k]} {k}" for k in (TRAIN, AGAIN, RESUME, SKIP, WAIT) if kinds[k]]
        return f"{len(self.runs)} run{'s' if len(self.runs) != 1 else ''}: {', '.join(parts)}"


def dry_run(spec: Spec, store: Store | None, *, cache: DataCache | None = None,
            executor: Executor | None = None, rerun: bool = False,
            checkpoint_at: Callable[[str], CheckpointLocation] | None = None,
            out_of_process: bool = False) -> DryRun:
    """What ``run_sweep(spec, store, executor, rerun=rerun)`` would do with each run; trains
    and writes nothing. ``store``: opened read-only, or None when its file does not exist (every
    run would train). ``executor``: checked as the sweep checks it (factories its workers can
    import), when given. ``checkpoint_at``: where a run's checkpoint lives (default beside the
    store). ``out_of_process``: the runs would train in other processes whose executor is not
    built here (a Ray cluster's), checked as any such executor is. Raises BatchlabError on bad
    input, with the sweep's own messages."""
    prepared = prepare_sweep(spec, cache, known_auto_lrs(store, spec.name), measure_lr=False)
    if executor is not None or out_of_process:
        check_workers_can_import(prepared.runs, executor)
    return decide(spec, prepared, store, rerun=rerun, checkpoint_at=checkpoint_at)


def dry_run_at(spec: Spec, prepared: PreparedSweep, path: Path) -> DryRun:
    """``decide`` for the Python API, whose callers prepared the runs on their objects: the
    store at ``path`` is opened read-only, and not at all when its file is missing or empty."""
    if not store_exists(path):
        return decide(spec, prepared, None)
    store = Store(path, create=False, read_only=True)
    try:
        return decide(spec, prepared, store)
    finally:
        store.close()


def decide(spec: Spec, prepared: PreparedSweep, store: Store | None, *, rerun: bool = False,
           checkpoint_at: Callable[[str], CheckpointLocation] | None = None) -> DryRun:
    """What ``run_sweep(spec, store, prepared=prepared, rerun=rerun)`` would do with each of
    ``prepared``'s runs (checked already; ``lr = "auto"`` left unmeasured where no LR is
    known), reading ``store`` (None: every run would train); see ``dry_run``."""
    runs, notes = prepared.runs, list(prepared.notes)
    if spec.sweep.prune == "halving" and halving_note(spec, runs, prepared.n_train) is None:
        notes.append(f"sweep.prune = 'halving': runs train to the rungs' budgets first; only the "
                     f"best 1/{spec.sweep.halving_eta} of the configurations at each rung go on.")
    unmeasured = [r for r in runs if r.config.train.lr == "auto"]
    if unmeasured:
        notes.append(f"{len(unmeasured)} of the runs have lr = 'auto' with no LR found yet: the "
                     "sweep first runs the LR range test (once per batch size), and their run "
                     "ids follow from the LR it finds.")
    if store is None:
        return DryRun(spec.name, [PlannedRun(r, TRAIN, "train", r.config.train.lr == "auto")
                                  for r in runs], notes)
    store.check_intact()
    runs, mixed = label_sections(store, spec.name, runs, write=False)
    records = {r.id: r for r in store.runs()}
    status = {rid: rec.status for rid, rec in records.items()}
    ids = [r.run_id for r in runs]
    stored = fingerprints(store, ids)
    reasons = stale_runs(runs, stored, prepared.fingerprints, status, rerun=rerun)
    again = {rid: why for why, rids in reasons.items() for rid in rids}
    held = held_runs(store, ids)
    where = checkpoint_at or (lambda rid: checkpoint_file(store.path, rid))
    planned = []
    for run in runs:
        kind, would = _decide(run, records.get(run.run_id), again.get(run.run_id),
                              stored.get(run.run_id), prepared.fingerprints.get(run.run_id),
                              run.run_id in held, where)
        planned.append(PlannedRun(run, kind, would, run.config.train.lr == "auto"))
    return DryRun(spec.name, planned, notes + mixed + reason_lines(reasons))


def _decide(run: RunSpec, record: RunRecord | None, again: str | None,
            stored: dict[str, Any] | None,
            current: Fingerprint | None, held: bool,
            where: Callable[[str], CheckpointLocation]) -> tuple[str, str]:
    """(kind, words) for one run, as ``run_sweep`` would act on it: ``again`` is its
    ``stale_runs`` reason (None: not stale), ``held`` whether a live sweep trains it now."""
    if again is not None:
        why = "--rerun" if again == "--rerun" else ", ".join(
            f"{part} changed" for part in changed_parts(Fingerprint.from_dict(stored or {}),
                                                        current or Fingerprint()))
        return AGAIN, f"train again ({why or again})"
    if record is None or record.status == PENDING:
        return TRAIN, "train"
    if record.status in FINAL_STATUSES:
        finished = "finished" if record.status == "completed" else record.status
        return SKIP, f"skip ({finished})"
    if held:
        return WAIT, "wait (another sweep is training it)"
    state = resumable(where(run.run_id), run.run_id, record.progress_step)
    if state is None or not state["step"]:
        return TRAIN, "train"
    return RESUME, f"resume from step {state['step']}"
