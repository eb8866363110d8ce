"""The command line: parse, call the library, print. Bad input exits 2 with one paragraph.

Each module registers its commands on the shared ``app`` when imported below.
"""

from __future__ import annotations

import sys

from batchlab.cli.common import app, err_console
from batchlab.errors import BatchlabError

# the import order is the order of the commands in --help; each module registers its own
# isort: off
from batchlab.cli import runs  # noqa: F401, E402
from batchlab.cli import report  # noqa: F401, E402
from batchlab.cli import probes  # noqa: F401, E402
from batchlab.cli import importing  # noqa: F401, E402
# isort: on


def main() -> None:
    """Entry point: user errors become one paragraph on stderr and exit code 2."""
    try:
        app()
    except BatchlabError as err:
        err_console.print(f"[red]error:[/] {err}", soft_wrap=True)
        sys.exit(err.exit_code)
