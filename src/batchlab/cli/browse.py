"""Commands that browse and tidy the store: ls, show, export, rm. None of them imports torch."""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from batchlab.cli.common import (
    DEFAULT_STORE,
    StoreOpt,
    app,
    console,
    err_console,
    fmt,
    on_ctrl_c,
    output_file,
    plural,
)
from batchlab.errors import BatchlabError, StoreError
from batchlab.paths import safe_name
from batchlab.store import RunRecord, Store

if TYPE_CHECKING:
    from batchlab.analysis.verdict import RunVerdict

# ls: one column per status, in the order a run goes through them; "pruned" runs were stopped
# early by sweep.prune, "interrupted" runs resume from a checkpoint, "pending" ones never started
STATUS_COLUMNS = ("completed", "diverged", "pruned", "failed", "interrupted", "running", "pending")


GONE = " (its process is gone)"


def status_text(status: str, steps: int | None, total: int | None, gone: bool = False) -> str:
    """'interrupted at step 40 of 120'; 'pending' never started; a running run whose process
    died (``gone``) reads 'interrupted ... (its process is gone)'; others as they are."""
    if gone and status == "running":
        return status_text("interrupted", steps, total) + GONE
    if status in ("interrupted", "failed", "pruned") and steps:
        return f"{status} at step {steps}" + (f" of {total}" if total else "")
    return status


@app.command("ls")
def ls(
    experiment: Annotated[str | None, typer.Argument(
        metavar="EXPERIMENT", help="List this experiment's runs.", show_default=False)] = None,
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """List experiments with their runs per status, or the runs of one experiment."""
    from batchlab.results import experiment_rows, with_differences
    from batchlab.store.claims import abandoned

    with Store(store, create=False) as st:
        gone = abandoned(st)
        if experiment is None:
            # escape: a name or path such as 'sweep[bs]' is text, not rich markup (which showed
            # 'sweep', and raised MarkupError on 'a[/]')
            table = Table(title=escape(f"experiments in {store}"))
            for col in ("name", "runs", *STATUS_COLUMNS):
                table.add_column(col, justify="left" if col == "name" else "right")
            for e in st.experiments():
                counts = dict(e.counts)
                if gone:
                    dead = sum(r.id in gone for r in st.runs(e.name))
                    counts["running"] = counts.get("running", 0) - dead
                    counts["interrupted"] = counts.get("interrupted", 0) + dead
                cells = [counts.get(k, 0) for k in STATUS_COLUMNS]
                cells[-1] += sum(counts.values()) - sum(cells)  # a status this version does not know
                table.add_row(escape(e.name), str(sum(counts.values())), *map(str, cells))
            console.print(table)
            probes_only = [e.name for e in st.experiments() if not e.spec]
        else:
            records = st.runs(experiment)
            probes_only = [experiment] if not records and st.probes(experiment) else []
            if not probes_only:  # an empty runs table, and 'show RUN' of no run, say nothing
                rows = with_differences(experiment_rows(st, experiment), records)
                console.print(_with_ids(rows, records, experiment, gone, _verdicts(st, experiment)))
        for name in probes_only:
            if found := st.probes(name):
                kinds = ", ".join(sorted({p.kind for p in found}))
                report = shlex.join(["batchlab", "report", name, "--store", str(store)])
                console.print(escape(f"'{name}' holds {len(found)} probe result(s) ({kinds}) and "
                                     f"no runs; `{report}` shows them."))


def _verdicts(st: Store, experiment: str) -> dict[str, RunVerdict]:
    """Each run's verdict (one label, one sentence), judged within its experiment."""
    from batchlab.analysis import analyze_experiment

    return {r.run_id: r.verdict for r in analyze_experiment(st, experiment).runs if r.verdict}


def _with_ids(rows: list[dict[str, Any]], records: list[RunRecord], experiment: str,
              gone: set[str], verdicts: dict[str, RunVerdict]) -> Table:
    """The runs of one experiment: their knobs, with a column per swept or otherwise differing
    field (the dotted keys of ``rows``, as in the end-of-sweep table), result (final val acc,
    or for a regression the final and lowest val loss) and diagnosis."""
    from batchlab.results import extra_columns, rows_are_regression

    extra, left_out = extra_columns(rows)
    scores = ([("val loss", "final_val_loss"), ("lowest val loss", "best_val_loss")]
              if rows_are_regression(rows) else [("val acc", "final_val_acc")])
    caption = "'batchlab show RUN' gives every finding with its numbers"
    if left_out:
        caption += f"; also differing: {', '.join(left_out)}"
    table = Table(title=escape(f"runs of '{experiment}'"), caption=caption)
    for col in ("run id", "status", "batch", "lr", "schedule", "seed", *extra,
                *(header for header, _ in scores), "time s", "diagnosis", "why"):
        table.add_column(escape(col), overflow="fold")
    for r, rec in zip(rows, records, strict=True):
        v = verdicts.get(rec.id)
        table.add_row(r["run_id"], status_text(r["status"], rec.progress_step, rec.total_steps,
                                               rec.id in gone),
                      fmt(r["batch_size"]), fmt(r["lr"]), r["schedule"], fmt(r["seed"]),
                      *(escape(fmt(r.get(k))) for k in extra),
                      *(fmt(r.get(key)) for _, key in scores), fmt(r["wall_time_s"]),
                      escape(v.label) if v else "–", escape(v.sentence) if v else "–")
    return table


def run_header(rec: RunRecord, gone: bool = False) -> str:
    """One line about a run: its status with its progress, and its wall time when it ran."""
    parts = [f"[bold]run {rec.id}[/]",
             f"status: {status_text(rec.status, rec.progress_step, None, gone)}"]
    done = rec.steps if rec.steps is not None else rec.progress_step
    if rec.status != "pending":
        parts.append(f"steps: {done}" + (f" of {rec.total_steps}" if rec.total_steps else ""))
    if rec.wall_time is not None:
        parts.append(f"wall time: {fmt(rec.wall_time)} s")
    return "  ".join(parts)


@app.command()
def show(
    run_id: Annotated[str, typer.Argument(metavar="RUN", help="Run id or unique prefix.")],
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Everything stored about one run: its diagnosis (the label and sentence of 'ls', then
    every finding with its numbers), the config fields that apply to it, environment, summary
    and its metrics."""
    from batchlab.applicable import applicable
    from batchlab.store.claims import abandoned

    with Store(store, create=False) as st:
        rec = st.run(run_id)
        console.print(run_header(rec, rec.id in abandoned(st)))
        home = next((e.name for e in st.experiments()
                     if e.counts and any(r.id == rec.id for r in st.runs(e.name))), None)
        # judged within the first experiment that holds it (its sweep is what it is compared to)
        verdict = _verdicts(st, home).get(rec.id) if home is not None else None
        if verdict is not None:  # the table's label and sentence, then the evidence behind them
            console.print(f"[bold]diagnosis:[/] {escape(verdict.label)}: {escape(verdict.sentence)}")
            for line in verdict.evidence:
                console.print(f"  - {escape(line)}", soft_wrap=True)
        if rec.error and not (verdict and any(rec.error in e for e in verdict.evidence)):
            # a pruned run's reason is in its evidence; a failed run's error is not
            label = "[magenta]pruned:[/]" if rec.status == "pruned" else "[red]error:[/]"
            console.print(f"{label} {escape(rec.error)}")
        doc: dict[str, Any] = {"config": applicable(rec.config)}
        if rec.environment:
            doc["environment"] = rec.environment
        if rec.summary:
            doc["summary"] = rec.summary
        console.print_json(json.dumps(doc, default=str))
        metrics = st.metrics(rec.id)
        if not metrics:
            console.print("no metrics stored yet")
            return
        table = Table(title="metrics")
        for col in ("name", "points", "first", "last", "min", "max"):
            table.add_column(col)
        for name, s in metrics.items():
            v = s.value
            table.add_row(name, str(len(v)), fmt(float(v[0])), fmt(float(v[-1])),
                          fmt(float(min(v))), fmt(float(max(v))))
        console.print(table)


@app.command()
def export(
    experiment: Annotated[str, typer.Argument(metavar="EXPERIMENT", help="Experiment name.")],
    format: Annotated[str, typer.Option(
        "--format", "-f", metavar="csv|json|tensorboard", help="Output format.")] = "csv",
    output: Annotated[str | None, typer.Option(
        "--output", "-o", metavar="PATH", help="Folder (csv, tensorboard) or file (json).")] = None,
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Export an experiment: runs with their diagnosis and every metric row, as CSV files, one
    JSON file, or TensorBoard event files (one run per sub-folder)."""
    from batchlab.export import FORMATS, export_experiment

    if format not in FORMATS:
        raise BatchlabError(f"--format {format!r} is not supported; use one of {', '.join(FORMATS)}.")
    # json writes one file: 'out/' must not become a file named 'out'
    out_path = (output_file(output, Path(f"{safe_name(experiment)}.json")) if format == "json"
                else None if output is None else Path(output))
    with Store(store, create=False) as st:
        n = len(st.runs(experiment))
        # seconds for a few hundred runs; the export is rewritten whole by the next one
        with on_ctrl_c("the export was not finished (the store is unchanged); run the same "
                       "command again to write it whole."), \
                console.status(escape(f"exporting {plural(n, 'run')} of '{experiment}' as {format} ...")):
            out = export_experiment(st, experiment, format, out_path)
    console.print(escape(f"exported {plural(n, 'run')} of '{experiment}' to {out}"))


def _refuse_live(st: Store, run_ids: list[str]) -> None:
    """A run another sweep is training right now cannot be removed under its feet."""
    from batchlab.store.claims import STALE_AFTER_S, owner_is_dead

    for rid in run_ids:
        rec = st.run(rid)
        owner = st.conn.execute("SELECT owner, heartbeat FROM runs WHERE id=?", (rid,)).fetchone()
        live = owner[1] is not None and owner[1] >= time.time() - STALE_AFTER_S
        if rec.status == "running" and live and not owner_is_dead(owner[0]):
            raise StoreError(
                f"run {rid} is being trained right now by another batchlab process ({owner[0]}); "
                "stop that sweep (Ctrl-C) first, then remove it.")


@app.command()
def rm(
    target: Annotated[str, typer.Argument(
        metavar="RUN|EXPERIMENT", help="An experiment name, or a run id (or unique prefix).")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Remove an experiment (its runs, metrics, probe results and checkpoints; runs another
    experiment shares are kept) or one run, after asking."""
    from batchlab.store.lifecycle import checkpoint_file, plan_removal, remove

    with Store(store, create=False) as st:
        removal = plan_removal(st, target)
        _refuse_live(st, removal.run_ids)
        if not yes:
            try:
                agreed = typer.confirm(f"remove {removal.describe()} from {store}?", default=False,
                                       err=True)
            except typer.Abort:  # stdin closed (a script, a pipe) or Ctrl-C: not "Aborted!"
                err_console.print("\nnothing removed: no answer (no terminal, or Ctrl-C); pass "
                                  "--yes to remove without asking.")
                raise typer.Exit(1) from None
            if not agreed:
                err_console.print("nothing removed.")
                raise typer.Exit(1)
        remove(st, removal)
    for rid in removal.run_ids:  # after the commit: a crash in between leaves unused files only
        checkpoint_file(store, rid).unlink(missing_ok=True)
    console.print(escape(f"removed {removal.describe()}"))
