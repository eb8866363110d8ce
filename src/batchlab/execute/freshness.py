"""Before a sweep skips or resumes a stored run: is it still the run the inputs would give?

A run id covers the config only; ``batchlab.fingerprint`` covers the data's bytes and the user
factory's source. ``refresh`` compares the fingerprint stored with each planned run to the
current one, resets the runs whose inputs changed (and, with ``rerun``, every run) so they
train again from scratch, deletes their checkpoints, records the current fingerprints and
returns one line per reason saying what is retrained and why.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from batchlab.events import PENDING, RUNNING
from batchlab.fingerprint import Fingerprint, changes
from batchlab.plan import RunSpec
from batchlab.store import Store
from batchlab.store.lifecycle import checkpoint_file, fingerprints, reset_runs, set_fingerprints


def _runs(n: int) -> str:
    return "1 run" if n == 1 else f"{n} runs"


def stale_runs(runs: list[RunSpec], stored: dict[str, dict[str, Any] | None], current: dict[str, Fingerprint],
               status: dict[str, str], *, rerun: bool = False) -> dict[str, list[str]]:
    """Which of ``runs`` a sweep trains again from scratch, by reason ("--rerun", or what
    changed in words): every stored run with ``rerun``, else those whose ``stored``
    fingerprint (run id -> dict, None when never fingerprinted) differs from ``current``.
    Pure: ``refresh`` acts on it, ``batchlab sweep --dry-run`` only reports it.

    Runs another sweep is training right now (status running) are left alone: resetting them
    under that sweep's feet would mix two trainings' rows. A run never fingerprinted (stored by
    an older batchlab) takes the current fingerprint without being retrained.
    """
    reasons: dict[str, list[str]] = defaultdict(list)  # reason -> run ids
    for run in runs:
        state = status.get(run.run_id, PENDING)
        if state in (PENDING, RUNNING):
            continue
        if rerun:
            reasons["--rerun"].append(run.run_id)
            continue
        old = stored.get(run.run_id)
        new = current.get(run.run_id)
        if old is not None and new is not None:
            why = changes(run.config, Fingerprint.from_dict(old), new)
            if why:
                reasons[" and ".join(why)].append(run.run_id)
    return dict(reasons)


def refresh(store: Store, runs: list[RunSpec], current: dict[str, Fingerprint],
            status: dict[str, str], *, rerun: bool = False) -> list[str]:
    """Reset the stale runs among ``runs`` (``stale_runs``: all of them with ``rerun``) and
    record the current fingerprints; returns what was reset and why, in words."""
    stored = fingerprints(store, [r.run_id for r in runs])
    reasons = stale_runs(runs, stored, current, status, rerun=rerun)
    stale = [rid for ids in reasons.values() for rid in ids]
    if stale:
        reset_runs(store, stale)
        for rid in stale:  # after the reset: a crash in between leaves an unused file
            checkpoint_file(store.path, rid).unlink(missing_ok=True)
    set_fingerprints(store, {r.run_id: current[r.run_id].to_dict() for r in runs
                             if r.run_id in current and status.get(r.run_id) != RUNNING})
    return reason_lines(reasons)


def reason_lines(reasons: dict[str, list[str]]) -> list[str]:
    """One line per reason of ``stale_runs``: how many runs train again from scratch, and why."""
    lines = []
    for why, ids in reasons.items():
        if why == "--rerun":
            lines.append(f"--rerun: training {_runs(len(ids))} again from scratch "
                         "(their stored results are replaced)")
        else:
            names = ", ".join(rid[:8] for rid in ids[:6]) + (", ..." if len(ids) > 6 else "")
            lines.append(f"retraining {_runs(len(ids))} ({names}): {why} since "
                         f"{'it was' if len(ids) == 1 else 'they were'} trained")
    return lines
