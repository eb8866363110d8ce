"""Commands that turn stored runs into reports: report, compare."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from batchlab.cli.common import DEFAULT_STORE, StoreOpt, app, console, on_ctrl_c, output_file
from batchlab.paths import safe_name
from batchlab.store import Store

OutputOpt = Annotated[str | None, typer.Option(
    "--output", "-o", metavar="FILE", help="HTML file to write.")]
TargetOpt = Annotated[float | None, typer.Option(
    "--target", min=0, max=1, help="Validation accuracy that counts as reached (default: 95% of the best).")]


def report_path(experiment: str, store: Path) -> Path:
    """Default report file: ``<experiment>-report.html`` beside the store (the name made safe:
    see ``safe_name``)."""
    return store.parent / f"{safe_name(experiment)}-report.html"


def print_written(result: object) -> None:
    console.print(escape(f"report: {result.html}  (figures in {result.figures_dir}/, "
                         f"{len(result.figures)} PNG files, {result.seconds:.1f} s)"))
    for note in result.notes:
        console.print(f"  note: {note}")


AGAIN = "the report was not finished; the store is unchanged. Run the same command again to write it."


def write_under_spinner(what: str, write: Callable[[], object], interrupted: str = AGAIN) -> None:
    """Write a report under a spinner naming ``what`` (reading the store and drawing the
    figures takes seconds), then say where it is. Ctrl-C: the line ``interrupted`` (what was
    kept, how to go on), exit 130."""
    with on_ctrl_c(interrupted), \
            console.status(escape(f"writing {what} (reading the store, drawing the figures) ...")):
        result = write()
    print_written(result)


@app.command()
def report(
    experiment: Annotated[str, typer.Argument(help="Experiment name.")],
    output: OutputOpt = None,
    target: TargetOpt = None,
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """One self-contained HTML report (figures, diagnosis, conclusions) plus its PNGs."""
    default = report_path(experiment, store)
    out = output_file(output, default) or default
    with Store(store, create=False) as st:
        def write() -> object:
            from batchlab.report import write_report  # matplotlib: a second, under the spinner

            return write_report(st, experiment, out, target)

        write_under_spinner(f"the report of '{experiment}'", write)


@app.command()
def compare(
    experiment_a: Annotated[str, typer.Argument(help="First experiment.")],
    experiment_b: Annotated[str, typer.Argument(help="Second experiment.")],
    output: OutputOpt = None,
    target: TargetOpt = None,
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """The same figures for two experiments side by side, in one HTML file."""
    default = store.parent / f"{safe_name(experiment_a)}-vs-{safe_name(experiment_b)}.html"
    out = output_file(output, default) or default
    with Store(store, create=False) as st:
        def write() -> object:
            from batchlab.report import write_comparison  # matplotlib: under the spinner

            return write_comparison(st, experiment_a, experiment_b, out, target)

        write_under_spinner(f"the comparison of '{experiment_a}' and '{experiment_b}'", write)
