"""The command line: parse, call the library, print. Bad input exits 2 with one paragraph.

Each module registers its commands on the shared ``app`` when imported below.
"""

from __future__ import annotations

import sys

from batchlab.cli import probes, report, runs  # noqa: F401  (each registers its commands)
from batchlab.cli.common import app, err_console
from batchlab.errors import BatchlabError


def main() -> None:
    """Entry point: user errors become one paragraph on stderr and exit code 2."""
    try:
        app()
    except BatchlabError as err:
        err_console.print(f"[red]error:[/] {err}", soft_wrap=True)
        sys.exit(err.exit_code)
