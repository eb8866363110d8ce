"""``batchlab sweep --dry-run`` / ``run --dry-run``: the planned runs and what the sweep would
do with each, printed; nothing trains and nothing is written (``batchlab.execute.dryrun``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.table import Table

from batchlab.cli.common import console, fmt
from batchlab.cli.runs import knob_columns, make_executor

if TYPE_CHECKING:
    from batchlab.execute.dryrun import DryRun, PlannedRun
    from batchlab.spec import Spec
    from batchlab.store import RunRecord

def dry_run_sweep(spec: Spec, store_path: Path, workers: int, executor_kind: str = "local", *,
                  rerun: bool = False, **executor_options: Any) -> DryRun:
    """Check ``spec`` as ``batchlab sweep`` would (same options, same exit-2 paragraphs), then
    print its runs with what the sweep would do with each, its notes and a count line. The
    store is only read (not created when missing); a Ray cluster is not contacted."""
    from batchlab.execute.checkpoints import UriCheckpoint
    from batchlab.execute.datacache import DataCache
    from batchlab.execute.dryrun import dry_run
    from batchlab.store import Store
    from batchlab.store.files import store_exists

    cache = DataCache()
    # the options are checked as the sweep checks them; a Ray executor would start a cluster
    # (and make the --checkpoint-storage folder), so it is not built
    executor = (make_executor(executor_kind, workers, cache, **executor_options)
                if executor_kind != "ray" else None)
    storage = executor_options.get("checkpoint_storage")
    checkpoint_at = None if storage is None else (
        lambda rid: UriCheckpoint(f"{storage.rstrip('/')}/{rid}.pt"))
    exists = store_exists(store_path)
    store = Store(store_path, create=False, read_only=True) if exists else None
    try:
        with console.status("checking the spec: loading data, building each model and "
                            "checking the schedules ..."):
            plan = dry_run(spec, store, cache=cache, executor=executor, rerun=rerun,
                           checkpoint_at=checkpoint_at, out_of_process=executor_kind == "ray")
    finally:
        if store is not None:
            store.close()
    for note in plan.notes:
        console.print(escape(note))
    where = str(store_path) if exists else f"{store_path}, not created yet"
    console.print(plan_table(plan.runs, escape(f"dry run of experiment '{spec.name}' ({where}): "
                                               "nothing is trained or written")))
    console.print(plan.count())
    return plan


def _record(planned: PlannedRun) -> RunRecord:
    """A planned run as a record not trained yet, so the sweep's own row and column logic
    (``results.run_row``, ``with_differences``) shows it."""
    from batchlab.store import RunRecord

    run = planned.run
    return RunRecord(run.run_id, planned.kind, run.config.model_dump(mode="json"), {}, 0.0, None,
                     None, None, None, None, 0, 0, None, {}, run.point)


def plan_table(runs: list[PlannedRun], title: str) -> Table:
    """One row per planned run: its id (first 8 characters; '-' while its lr = "auto" is
    unmeasured, as the id follows from the LR), the columns the sweep's results table shows
    what a run is by, and what the sweep would do with it."""
    from batchlab.execute.dryrun import AGAIN, RESUME, SKIP, UNMEASURED, WAIT

    styles = {AGAIN: "yellow", RESUME: "cyan", SKIP: "green", WAIT: "magenta"}  # TRAIN: plain
    from batchlab.results import run_row, scaled_config_lr, with_differences

    records = [_record(p) for p in runs]
    rows = with_differences([run_row(r) for r in records], records)
    for planned, row, record in zip(runs, rows, records, strict=True):
        row["effective_lr"] = scaled_config_lr(record.config["train"])  # None while "auto"
        if planned.unmeasured:
            row["lr"] = UNMEASURED
    knobs, extra, caption = knob_columns(rows)
    table = Table(title=title, caption=caption)
    for header in ["run", *(h for h, _ in knobs), *extra, "would"]:
        table.add_column(header, justify="left" if header in ("run", "schedule", "would") else "right")
    for planned, row in zip(runs, rows, strict=True):
        style = styles.get(planned.kind, "")
        would = f"[{style}]{planned.would}[/]" if style else planned.would
        cells = ["-" if planned.unmeasured else planned.run.run_id[:8]]
        cells += [fmt(row.get(k)) for _, k in knobs] + [fmt(row.get(k)) for k in extra]
        table.add_row(*cells, would)
    return table
