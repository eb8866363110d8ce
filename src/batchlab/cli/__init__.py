"""The command line: parse, call the library, print. Bad input exits 2 with one paragraph.

Each module registers its commands on the shared ``app`` when imported below. None of them
imports torch at the top: only the commands that train or probe load it.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from batchlab import __version__
from batchlab.cli.common import app, console, err_console
from batchlab.errors import BatchlabError

# the import order is the order of the commands in --help; each module registers its own
# isort: off
from batchlab.cli import runs  # noqa: F401, E402
from batchlab.cli import browse  # noqa: F401, E402
from batchlab.cli import report  # noqa: F401, E402
from batchlab.cli import probes  # noqa: F401, E402
# isort: on


def _print_version(value: bool) -> None:
    if value:
        console.print(f"batchlab {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[bool, typer.Option(
        "--version", callback=_print_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """batchlab: study how batch size and learning rate shape training, on your model."""


def import_from_current_folder() -> None:
    """Let ``model.name = "mymodels:make"`` find ``mymodels.py`` in the current folder.

    ``python -m batchlab`` puts the current folder first on sys.path, but an installed console
    script puts its own bin folder there instead; users run both and expect the same. Worker
    processes inherit sys.path from this process (spawn passes it along)."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)


def main() -> None:
    """Entry point: user errors become one paragraph on stderr and exit code 2."""
    import_from_current_folder()
    try:
        app()
    except BatchlabError as err:
        err_console.print(f"[red]error:[/] {err}", soft_wrap=True)
        sys.exit(err.exit_code)
