"""Commands that train: demo, sweep, run; and the results table they end with.

Torch and the trainer are imported inside the commands (see ``cli.common``), so importing
this module for ``--help`` costs nothing heavy.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from batchlab.cli.common import (
    DEFAULT_STORE,
    NewStoreOpt,
    SetOpt,
    SpecArg,
    WorkersOpt,
    app,
    console,
    err_console,
    exit_within,
    fmt,
    import_torch,
    interrupted,
    load_cli_spec,
    on_ctrl_c,
    plural,
)
from batchlab.errors import BatchlabError, ExecutorError

if TYPE_CHECKING:
    from batchlab.execute.base import Executor
    from batchlab.execute.datacache import DataCache
    from batchlab.execute.sweep import SweepOutcome
    from batchlab.spec import Spec


DryRunOpt = Annotated[bool, typer.Option(
    "--dry-run", help="Check the spec and print its runs and what the sweep would do with each "
    "(train, skip, resume, train again); train nothing, write nothing.")]


def results_table(rows: list[dict[str, Any]], title: str) -> Table:
    """The end-of-sweep table: the knobs, final and best metrics, wall time, status.

    A seed column appears when the rows hold more than one seed (repeats), so two rows that
    differ only by seed can be told apart; so does a column per other dotted key of the rows
    (swept fields, and the differing fields ``results.with_differences`` adds; see
    ``results.extra_columns``). A regression (``results.rows_are_regression``: no accuracy,
    a loss) shows the final and lowest validation loss instead of the accuracy columns."""
    from batchlab.results import rows_are_regression

    knobs, extra, caption = knob_columns(rows)
    table = Table(title=title, show_lines=False, caption=caption)
    metrics = [("train loss", "final_train_loss"), ("train acc", "final_train_acc"),
               ("val loss", "final_val_loss"), ("val acc", "final_val_acc"),
               ("best val acc (epoch)", None), ("time s", "wall_time_s")]
    if rows_are_regression(rows):  # the loss the analysis compares it by; no empty acc columns
        metrics = [("train loss", "final_train_loss"), ("val loss", "final_val_loss"),
                   ("lowest val loss", "best_val_loss"), ("time s", "wall_time_s")]
    for header in [c[0] for c in knobs] + extra + [c[0] for c in metrics] + ["status"]:
        table.add_column(header, justify="right" if header not in ("schedule", "status") else "left")
    for r in rows:
        best = r.get("best_val_acc")
        best_txt = "-" if best is None or best < 0 else (
            f"{best:.4f} ({fmt(r.get('best_val_acc_epoch'), 3)})")
        status = r["status"]
        style = {"completed": "green", "diverged": "yellow", "pruned": "magenta",
                 "failed": "red"}.get(status, "")
        cells = [fmt(r.get(k)) for _, k in knobs] + [fmt(r.get(k)) for k in extra]
        cells += [fmt(r.get(k)) if k else best_txt for _, k in metrics]
        cells.append(f"[{style}]{status}[/]" if style else status)
        table.add_row(*cells)
    return table


def knob_columns(rows: list[dict[str, Any]]) -> tuple[list[tuple[str, str]], list[str], str | None]:
    """The columns a table of runs shows what each run is by: (header, row key) of the knobs
    (batch, lr, eff. lr, schedule; seed when the rows hold more than one), the swept and
    differing fields' dotted keys, and a caption naming those left out (None when none)."""
    from batchlab.results import extra_columns

    extra, left_out = extra_columns(rows)
    knobs = [("batch", "batch_size"), ("lr", "lr"), ("eff. lr", "effective_lr"),
             ("schedule", "schedule")]
    if len({r.get("seed") for r in rows}) > 1:
        knobs.append(("seed", "seed"))
    return knobs, extra, _left_out(left_out)


def _left_out(fields: list[str]) -> str | None:
    """A table caption naming the differing fields that got no column (too many to show)."""
    if not fields:
        return None
    return f"also differing: {', '.join(fields)} ('batchlab show RUN' prints a run's config)"


def make_executor(kind: str, workers: int, cache: DataCache, address: str | None = None,
                  cpus_per_run: float = 1, gpus_per_run: float = 0,
                  checkpoint_storage: str | None = None) -> Executor:
    """``local`` with one worker trains in this process; ``ray`` runs on a Ray cluster, with
    its checkpoints at ``checkpoint_storage`` (default: through Ray, beside the store)."""
    from batchlab.execute.inline import InlineExecutor
    from batchlab.execute.local import LocalPoolExecutor

    if kind == "ray":
        from batchlab.execute.ray import RayExecutor

        if workers != 1:  # Ray ignores it: refused, so no one waits for N runs at once
            raise BatchlabError(f"--workers {workers} is for --executor local; on Ray as many runs "
                                "train at once as the cluster's CPUs and GPUs hold with "
                                "--cpus-per-run and --gpus-per-run. Leave --workers out.")
        return RayExecutor(address=address, cpus_per_run=cpus_per_run, gpus_per_run=gpus_per_run,
                           checkpoint_storage=checkpoint_storage)
    if kind != "local":
        raise BatchlabError(f"--executor {kind!r} is not known; use local or ray.")
    if checkpoint_storage is not None:
        raise BatchlabError("--checkpoint-storage is for --executor ray, whose runs may train on "
                            "other machines; local runs keep their checkpoints beside the store, "
                            "which all their processes see. Leave it out, or add --executor ray.")
    # a Ray option without --executor ray would otherwise train here, on this machine alone
    ray_only = [f"{name} {value:g}" if isinstance(value, float) else f"{name} {value}"
                for name, value, default in (("--address", address, None),
                                             ("--cpus-per-run", cpus_per_run, 1),
                                             ("--gpus-per-run", gpus_per_run, 0))
                if value != default]
    if ray_only:
        verb = "is" if len(ray_only) == 1 else "are"
        raise BatchlabError(f"{', '.join(ray_only)} {verb} for --executor ray; without it the runs "
                            "train on this machine (--executor local, --workers N). Add "
                            "--executor ray, or leave it out.")
    return InlineExecutor(data_cache=cache) if workers == 1 else LocalPoolExecutor(workers)


def _checking(spec: Spec) -> str:
    """What the seconds before the first progress bar are spent on, in words."""
    if spec.train.function is not None:
        return f"importing train.function '{spec.train.function}' and checking the schedules ..."
    auto = spec.train.lr == "auto" or any(
        v == "auto" for k, vs in spec.sweep.grid.items() if k == "train.lr" for v in vs)
    what = "loading data, building each model and checking the schedules"
    if auto:
        what = "finding an LR for lr = 'auto' (once per batch size), " + what
    return what + " ..."


def _sweep(spec: Spec, store_path: Path, workers: int, executor_kind: str = "local", *,
           rerun: bool = False, only_planned: bool = False, **executor_options: Any) -> SweepOutcome:
    """Check, train and print the results table. ``only_planned``: the table shows just the
    runs this call planned (``batchlab run``), not the rest of the experiment."""
    import_torch()  # the first seconds say what they are spent on
    from batchlab.execute.datacache import DataCache
    from batchlab.execute.sweep import known_auto_lrs, prepare_sweep, run_sweep
    from batchlab.probes.auto_lr import AutoLrInterrupted, interrupted_note
    from batchlab.progress import SweepProgress
    from batchlab.results import run_row, with_differences
    from batchlab.store import Store

    cache = DataCache()
    known = {}
    if store_path.exists():  # LRs an earlier call resolved for lr = "auto" (read only)
        with Store(store_path, create=False) as st:
            known = known_auto_lrs(st, spec.name)
    executor = make_executor(executor_kind, workers, cache, **executor_options)  # bad options
    with on_ctrl_c("nothing was stored yet (the store is untouched); run the same command again "
                   "to start."), console.status(_checking(spec)):
        try:
            prepared = prepare_sweep(spec, cache, known)  # bad input fails here, before any write
        except AutoLrInterrupted as cut:  # LRs already found for lr = "auto" are worth keeping
            with Store(store_path) as st:
                st.check_intact()
                st.add_probes(spec.name, cut.probes)
            interrupted(interrupted_note(cut))
    starting = f"starting {plural(workers, 'worker process', 'worker processes')}" if (
        executor_kind == "local" and workers > 1) else ""
    store = Store(store_path)
    try:
        try:
            with SweepProgress(console, starting) as progress:
                outcome = run_sweep(spec, store, executor, prepared=prepared, on_event=progress.on_event,
                                    on_plan=progress.on_plan, on_notice=progress.notice, rerun=rerun)
        except KeyboardInterrupt:
            err_console.print("interrupted: finished runs are stored; run the same command "
                              "again to resume the rest from their checkpoints.")
            exit_within(130)  # the store is closed on the way out; nothing else may hold it up
            raise typer.Exit(130) from None
        records = outcome.records
        if only_planned:
            planned = {r.run_id for r in prepared.runs}
            records = [r for r in records if r.id in planned]
        console.print(results_table(with_differences([run_row(r) for r in records], records),
                                    escape(f"experiment '{spec.name}' ({store_path})")))
        others = len(outcome.records) - len(records)
        if others:
            ls = shlex.join(["batchlab", "ls", spec.name, "--store", str(store_path)])
            console.print(escape(f"(experiment '{spec.name}' has {plural(others, 'other run')}; "
                                 f"`{ls}` lists them all)"))
        for r in records:
            if r.status == "failed":
                err_console.print(f"[red]run {r.id} failed:[/] {escape(str(r.error))}")
        if (why := outcome.failed_here()) is not None:
            # exit 1 whenever a run it trained failed, even beside runs that completed: a
            # script (or CI) checking the exit status must see it
            raise ExecutorError(why)
        return outcome
    finally:
        store.close()


@app.command()
def demo(
    store: NewStoreOpt = DEFAULT_STORE,
    workers: Annotated[int | None, typer.Option(
        "--workers", "-w", min=1, help="Parallel processes (default: 2, or 1 on a 1-core machine).",
        show_default=False)] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="Epochs per run (default: 30).")] = None,
) -> None:
    """The classic study on built-in digits: batch 16/32/64/128 x LR 0.1/0.01/0.001, with
    and without step decay (24 runs, about 2 minutes on 2 cores), then its report."""
    from batchlab.cli.report import report_path, write_under_spinner
    from batchlab.demo import demo_spec
    from batchlab.execute.local import available_cores
    from batchlab.report import write_report
    from batchlab.store import Store

    spec = demo_spec(epochs)
    _sweep(spec, store, workers or min(2, available_cores()))
    with Store(store, create=False) as st:
        write_under_spinner(f"the report of '{spec.name}'",
                            lambda: write_report(st, spec.name, report_path(spec.name, store)),
                            f"the demo's runs are stored; 'batchlab report {spec.name} --store "
                            f"{store}' writes its report.")


@app.command()
def sweep(
    spec_file: SpecArg,
    store: NewStoreOpt = DEFAULT_STORE,
    workers: WorkersOpt = 1,
    set_: SetOpt = None,
    rerun: Annotated[bool, typer.Option(
        "--rerun", help="Train every run again, even those already finished in the store.")] = False,
    executor: Annotated[str, typer.Option(metavar="local|ray", help="Where runs train.")] = "local",
    address: Annotated[str | None, typer.Option(
        metavar="ADDRESS", help="Ray cluster: host:port, auto, ray://host:port; default: the one `ray start` "
        "runs on this machine (or RAY_ADDRESS), else a new local one.")] = None,
    cpus_per_run: Annotated[float, typer.Option(metavar="N", help="Ray: CPUs per run.")] = 1,
    gpus_per_run: Annotated[float, typer.Option(metavar="N", help="Ray: GPUs per run (e.g. 0.5).")] = 0,
    checkpoint_storage: Annotated[str | None, typer.Option(
        metavar="URL", help="Ray: a folder every node reaches for the runs' checkpoints (path, "
        "NFS, s3://...); default: beside the store, through Ray.")] = None,
    dry_run: DryRunOpt = False,
) -> None:
    """Train every run of the spec's sweep; finished runs are skipped (unless their data or
    model code changed, or --rerun), interrupted ones resume."""
    options = {"address": address, "cpus_per_run": cpus_per_run, "gpus_per_run": gpus_per_run,
               "checkpoint_storage": checkpoint_storage}
    if dry_run:
        from batchlab.cli.dryrun import dry_run_sweep

        dry_run_sweep(load_cli_spec(spec_file, set_), store, workers, executor, rerun=rerun, **options)
        return
    _sweep(load_cli_spec(spec_file, set_), store, workers, executor, rerun=rerun, **options)


@app.command()
def run(
    spec_file: SpecArg,
    store: NewStoreOpt = DEFAULT_STORE,
    set_: SetOpt = None,
    rerun: Annotated[bool, typer.Option("--rerun", help="Train it again even if finished.")] = False,
    dry_run: DryRunOpt = False,
) -> None:
    """Train the spec's base config once (its sweep section is ignored) and show that run."""
    from batchlab.spec import spec_from_dict

    spec = load_cli_spec(spec_file, set_)
    raw = spec.model_dump(mode="json", exclude={"sweep"})
    if dry_run:
        from batchlab.cli.dryrun import dry_run_sweep

        dry_run_sweep(spec_from_dict(raw, str(spec_file)), store, 1, rerun=rerun)
        return
    _sweep(spec_from_dict(raw, str(spec_file)), store, 1, rerun=rerun, only_planned=True)
