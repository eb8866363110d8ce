"""Shared pieces of the command line: the typer app, consoles, common options, formatting."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from batchlab.execute.local import available_cores
from batchlab.spec import Spec, load_spec

app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="batchlab: study how batch size and learning rate shape training, on your model.",
)
# tables are wide: when writing to a file or a pipe, do not squeeze them into 80 columns
console = Console() if sys.stdout.isatty() else Console(width=180)
err_console = Console(stderr=True)

StoreOpt = Annotated[Path, typer.Option("--store", help="SQLite store file.")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="Override a field: train.lr=0.05")]
WorkersOpt = Annotated[int, typer.Option("--workers", "-w", min=1, help="Parallel processes.")]
DEFAULT_STORE = Path("batchlab.db")
DEMO_WORKERS = min(2, available_cores())


def load_cli_spec(spec_file: Path, sets: list[str] | None) -> Spec:
    """Load a spec with the command line's --set overrides; say what an override replaced."""
    notes: list[str] = []
    spec = load_spec(spec_file, sets or [], notes)
    for note in notes:
        err_console.print(f"note: {note}", soft_wrap=True)
    return spec


def fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.{digits}g}"
    return str(value)


