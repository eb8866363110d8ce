"""Commands that train and browse runs: demo, sweep, run, ls, show, export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from batchlab.cli.common import (
    DEFAULT_STORE,
    DEMO_WORKERS,
    SetOpt,
    StoreOpt,
    WorkersOpt,
    app,
    console,
    err_console,
    fmt,
    load_cli_spec,
)
from batchlab.demo import demo_spec
from batchlab.errors import BatchlabError, ExecutorError
from batchlab.execute.base import Executor
from batchlab.execute.datacache import DataCache
from batchlab.execute.inline import InlineExecutor
from batchlab.execute.local import LocalPoolExecutor
from batchlab.execute.sweep import SweepOutcome, known_auto_lrs, prepare_sweep, run_sweep
from batchlab.export import FORMATS, export_experiment
from batchlab.progress import SweepProgress
from batchlab.results import experiment_rows, run_row
from batchlab.spec import Spec, spec_from_dict
from batchlab.store import Store


def results_table(rows: list[dict[str, Any]], title: str) -> Table:
    """The end-of-sweep table: the knobs, final and best metrics, wall time, status."""
    table = Table(title=title, show_lines=False)
    cols = [("batch", "batch_size"), ("lr", "lr"), ("eff. lr", "effective_lr"),
            ("schedule", "schedule"), ("train loss", "final_train_loss"),
            ("train acc", "final_train_acc"), ("val loss", "final_val_loss"),
            ("val acc", "final_val_acc"), ("best val acc (epoch)", None),
            ("time s", "wall_time_s"), ("status", "status")]
    extra = [k for r in rows for k in r if "." in k]
    extra = list(dict.fromkeys(extra))
    for header in [c[0] for c in cols[:4]] + extra + [c[0] for c in cols[4:]]:
        table.add_column(header, justify="right" if header not in ("schedule", "status") else "left")
    for r in rows:
        best = r.get("best_val_acc")
        best_txt = "-" if best is None or best < 0 else (
            f"{best:.4f} ({fmt(r.get('best_val_acc_epoch'), 3)})")
        status = r["status"]
        style = {"completed": "green", "diverged": "yellow", "failed": "red"}.get(status, "")
        cells = [fmt(r.get(k)) for _, k in cols[:4]] + [fmt(r.get(k)) for k in extra]
        cells += [fmt(r.get(k)) if k else best_txt for _, k in cols[4:-1]]
        cells.append(f"[{style}]{status}[/]" if style else status)
        table.add_row(*cells)
    return table


def make_executor(kind: str, workers: int, cache: DataCache, address: str | None = None,
                  cpus_per_run: float = 1, gpus_per_run: float = 0) -> Executor:
    """``local`` with one worker trains in this process; ``ray`` runs on a Ray cluster."""
    if kind == "ray":
        from batchlab.execute.ray import RayExecutor

        return RayExecutor(address=address, cpus_per_run=cpus_per_run, gpus_per_run=gpus_per_run)
    if kind != "local":
        raise BatchlabError(f"--executor {kind!r} is not known; use local or ray.")
    return InlineExecutor(data_cache=cache) if workers == 1 else LocalPoolExecutor(workers)


def _sweep(spec: Spec, store_path: Path, workers: int, executor_kind: str = "local",
           **executor_options: Any) -> SweepOutcome:
    cache = DataCache()
    known = {}
    if store_path.exists():  # LRs an earlier call resolved for lr = "auto" (read only)
        with Store(store_path, create=False) as st:
            known = known_auto_lrs(st, spec.name)
    prepared = prepare_sweep(spec, cache, known)  # bad input fails here, before any write
    executor = make_executor(executor_kind, workers, cache, **executor_options)
    store = Store(store_path)
    try:
        try:
            with SweepProgress(console) as progress:
                outcome = run_sweep(spec, store, executor, prepared=prepared, on_event=progress.on_event,
                                    on_plan=progress.on_plan)
        except KeyboardInterrupt:
            err_console.print("interrupted: finished runs are stored; run the same command "
                              "again to resume the rest from their checkpoints.")
            raise typer.Exit(130) from None
        console.print(results_table([run_row(r) for r in outcome.records],
                                    f"experiment '{spec.name}' ({store_path})"))
        failed = [r for r in outcome.records if r.status == "failed"]
        for r in failed:
            err_console.print(f"[red]run {r.id} failed:[/] {escape(str(r.error))}")
        if (why := outcome.all_failed()) is not None:
            raise ExecutorError(why)  # exit 1: nothing trained, though the input was accepted
        return outcome
    finally:
        store.close()


@app.command()
def demo(
    store: StoreOpt = DEFAULT_STORE,
    workers: WorkersOpt = DEMO_WORKERS,
    epochs: Annotated[int | None, typer.Option(min=1, help="Epochs per run.")] = None,
) -> None:
    """The classic study on built-in digits: batch 16/32/64/128 x LR 0.1/0.01/0.001, with
    and without step decay (24 runs, about 3 minutes on 2 cores), then its report."""
    from batchlab.cli.report import print_written, report_path
    from batchlab.report import write_report

    spec = demo_spec(epochs)
    _sweep(spec, store, workers)
    with Store(store, create=False) as st:
        print_written(write_report(st, spec.name, report_path(spec.name, store)))


@app.command()
def sweep(
    spec_file: Annotated[Path, typer.Argument(help="TOML spec.")],
    store: StoreOpt = DEFAULT_STORE,
    workers: WorkersOpt = 1,
    set_: SetOpt = None,
    executor: Annotated[str, typer.Option(help="local (this machine) or ray.")] = "local",
    address: Annotated[str | None, typer.Option(
        help="Ray cluster: auto, ray://host:port; default starts a local one.")] = None,
    cpus_per_run: Annotated[float, typer.Option(help="Ray: CPUs per run.")] = 1,
    gpus_per_run: Annotated[float, typer.Option(help="Ray: GPUs per run (e.g. 0.5).")] = 0,
) -> None:
    """Train every run of the spec's sweep; finished runs are skipped, interrupted ones resume."""
    _sweep(load_cli_spec(spec_file, set_), store, workers, executor, address=address,
           cpus_per_run=cpus_per_run, gpus_per_run=gpus_per_run)


@app.command()
def run(
    spec_file: Annotated[Path, typer.Argument(help="TOML spec.")],
    store: StoreOpt = DEFAULT_STORE,
    set_: SetOpt = None,
) -> None:
    """Train the spec's base config once (its sweep section is ignored)."""
    spec = load_cli_spec(spec_file, set_)
    raw = spec.model_dump(mode="json", exclude={"sweep"})
    _sweep(spec_from_dict(raw, str(spec_file)), store, 1)


@app.command("ls")
def ls(
    experiment: Annotated[str | None, typer.Argument(help="List this experiment's runs.")] = None,
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """List experiments, or the runs of one experiment."""
    with Store(store, create=False) as st:
        if experiment is None:
            table = Table(title=f"experiments in {store}")
            for col in ("name", "runs", "completed", "diverged", "failed", "other"):
                table.add_column(col)
            for e in st.experiments():
                total = sum(e.counts.values())
                done = {k: e.counts.get(k, 0) for k in ("completed", "diverged", "failed")}
                table.add_row(e.name, str(total), *map(str, done.values()),
                              str(total - sum(done.values())))
            console.print(table)
        else:
            console.print(_with_ids(experiment_rows(st, experiment), experiment))


def _with_ids(rows: list[dict[str, Any]], experiment: str) -> Table:
    table = Table(title=f"runs of '{experiment}'")
    for col in ("run id", "status", "batch", "lr", "schedule", "seed", "val acc", "time s"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["run_id"], r["status"], fmt(r["batch_size"]), fmt(r["lr"]),
                      r["schedule"], fmt(r["seed"]), fmt(r["final_val_acc"]),
                      fmt(r["wall_time_s"]))
    return table


@app.command()
def show(
    run_id: Annotated[str, typer.Argument(help="Run id or unique prefix.")],
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Everything stored about one run: config, environment, summary and its metrics."""
    with Store(store, create=False) as st:
        rec = st.run(run_id)
        console.print(f"[bold]run {rec.id}[/]  status: {rec.status}  steps: {rec.steps}"
                      f"/{rec.total_steps}  wall time: {fmt(rec.wall_time)} s")
        if rec.error:
            console.print(f"[red]error:[/] {rec.error}")
        console.print_json(json.dumps({"config": rec.config, "environment": rec.environment,
                                       "summary": rec.summary}, default=str))
        table = Table(title="metrics")
        for col in ("name", "points", "first", "last", "min", "max"):
            table.add_column(col)
        for name, s in st.metrics(rec.id).items():
            v = s.value
            table.add_row(name, str(len(v)), fmt(float(v[0])), fmt(float(v[-1])),
                          fmt(float(min(v))), fmt(float(max(v))))
        console.print(table)


@app.command()
def export(
    experiment: Annotated[str, typer.Argument(help="Experiment name.")],
    format: Annotated[str, typer.Option("--format", "-f", help="csv, json or tensorboard.")] = "csv",
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Folder (csv, tensorboard) or file (json).")] = None,
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Export an experiment: runs with their diagnosis and every metric row, as CSV files, one
    JSON file, or TensorBoard event files (one run per sub-folder)."""
    if format not in FORMATS:
        raise BatchlabError(f"--format {format!r} is not supported; use one of {', '.join(FORMATS)}.")
    with Store(store, create=False) as st:
        n = len(st.runs(experiment))
        out = export_experiment(st, experiment, format, output)
    console.print(f"exported {n} runs of '{experiment}' to {out}")
