"""Commands that turn stored runs into reports: report, compare."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from batchlab.cli.common import DEFAULT_STORE, StoreOpt, app, console
from batchlab.paths import safe_name
from batchlab.store import Store

TargetOpt = Annotated[float | None, typer.Option(
    "--target", min=0, max=1, help="Validation accuracy that counts as reached (default: 95% of the best).")]


def report_path(experiment: str, store: Path) -> Path:
    """Default report file: ``<experiment>-report.html`` beside the store (the name made safe:
    see ``safe_name``)."""
    return store.parent / f"{safe_name(experiment)}-report.html"


def print_written(result: object) -> None:
    console.print(f"report: {result.html}  (figures in {result.figures_dir}/, "
                  f"{len(result.figures)} PNG files, {result.seconds:.1f} s)")
    for note in result.notes:
        console.print(f"  note: {note}")


@app.command()
def report(
    experiment: Annotated[str, typer.Argument(help="Experiment name.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="HTML file to write.")] = None,
    target: TargetOpt = None,
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """One self-contained HTML report (figures, diagnosis, conclusions) plus its PNGs."""
    from batchlab.report import write_report

    with Store(store, create=False) as st:
        print_written(write_report(st, experiment, output or report_path(experiment, store), target))


@app.command()
def compare(
    experiment_a: Annotated[str, typer.Argument(help="First experiment.")],
    experiment_b: Annotated[str, typer.Argument(help="Second experiment.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="HTML file to write.")] = None,
    target: TargetOpt = None,
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """The same figures for two experiments side by side, in one HTML file."""
    from batchlab.report import write_comparison

    out = output or store.parent / f"{safe_name(experiment_a)}-vs-{safe_name(experiment_b)}.html"
    with Store(store, create=False) as st:
        print_written(write_comparison(st, experiment_a, experiment_b, out, target))
