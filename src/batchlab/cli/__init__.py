"""The command line: parse, call the library, print. Bad input exits 2 with one paragraph.

Each module registers its commands on the shared ``app`` when imported below. None of them
imports torch at the top: only the commands that train or probe load it.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
from typing import Annotated


def _quiet_exit(signum: int, frame: object) -> None:
    """Ctrl-C while the command line is still loading: nothing has started, exit quietly."""
    sys.stderr.write("interrupted before anything started; nothing was stored.\n")
    raise SystemExit(130)


# before the heavy imports below (torch takes seconds): Ctrl-C there must not print a traceback
if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
    signal.signal(signal.SIGINT, _quiet_exit)

import typer  # noqa: E402
from rich.markup import escape  # noqa: E402

from batchlab import __version__  # noqa: E402
from batchlab.cli.common import app, console, err_console, exit_within  # noqa: E402
from batchlab.errors import BatchlabError  # noqa: E402
from batchlab.fserrors import describe  # noqa: E402

# the import order is the order of the commands in --help; each module registers its own
# isort: off
from batchlab.cli import runs  # noqa: F401, E402
from batchlab.cli import browse  # noqa: F401, E402
from batchlab.cli import report  # noqa: F401, E402
from batchlab.cli import follow  # noqa: F401, E402
from batchlab.cli import dashboard  # noqa: F401, E402
from batchlab.cli import probes  # noqa: F401, E402
from batchlab.cli import importing  # noqa: F401, E402
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


def _terminated(signum: int, frame: object) -> None:
    """SIGTERM (a job scheduler's or a container's stop, ``timeout``, ``kill``): stop as Ctrl-C
    stops, so every run ends reported as interrupted with its rows stored and resumes later;
    a second SIGTERM ends the process at once."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    raise KeyboardInterrupt


def main() -> None:
    """Entry point: user errors (and a full disk, a read-only folder, a name too long) become
    one paragraph on stderr and exit code 2; Ctrl-C before any run started exits 130; SIGTERM
    is handled as Ctrl-C."""
    if signal.getsignal(signal.SIGINT) is _quiet_exit:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # commands handle Ctrl-C now
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminated)
    import_from_current_folder()
    code: int | str | None = 0
    try:
        _run()
    except SystemExit as done:
        code = done.code
        if code == 130:
            if _ended_by_typer(done):
                err_console.print("interrupted: what had finished before Ctrl-C is stored; run "
                                  "the same command again to go on.", soft_wrap=True)
            _forget_handled_interrupt()
        raise
    finally:
        # registered last, so it runs first when the interpreter exits (a caller that runs
        # main() in its own process meets it only when that process exits)
        atexit.register(_shut_down_quietly, code if isinstance(code, int) else int(code is not None))


def _shut_down_quietly(code: int) -> None:
    """The command's work is done and said: a Ctrl-C during the interpreter's shutdown (torch
    takes about half a second to unload) must neither print a traceback from torch's finalizers
    nor turn the exit status into death by SIGINT (-2; seen in 8 of 12 Ctrl-Cs pressed as the
    results table appeared). From here Ctrl-C is ignored, and ``exit_within`` ends a shutdown
    that hangs, with the command's exit code."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    exit_within(code)


def _ended_by_typer(done: SystemExit) -> bool:
    """Whether typer turned a Ctrl-C that no command handled into this exit 130, silently:
    its ``Exit(130)`` is raised *from* the KeyboardInterrupt, where a command that said what it
    kept (``interrupted``) raises its own from None."""
    cause = getattr(done.__context__, "__cause__", None)
    return isinstance(done.__context__, typer.Exit) and isinstance(cause, KeyboardInterrupt)


def _forget_handled_interrupt() -> None:
    """Make a Ctrl-C that was handled (stored, said, exit 130) end the process with 130.

    Why: CPython 3.11-3.13 note a KeyboardInterrupt that leaves code run by ``exec`` of a
    string (a dataclass or namedtuple being made, say) as unhandled, even when it is caught
    further up, and ``python -m batchlab`` then ends by SIGINT instead of its exit code: its
    caller saw -2, not 130, after 2 of 40 Ctrl-Cs at random moments of a sweep (the console
    script exits with its code either way). A successful ``exec`` of a string clears that
    note; newer CPythons note only what reaches the top, and this does nothing there."""
    exec("")  # noqa: S102 - an empty string, only for the side effect above


def _run() -> None:
    """The command, with user errors and a Ctrl-C while loading turned into exit codes."""
    try:
        app()  # typer turns a Ctrl-C that a command does not handle into exit 130
    except KeyboardInterrupt:  # ... but not one while it builds the commands, before any runs
        _quiet_exit(signal.SIGINT, None)
    except BatchlabError as err:
        err_console.print(f"[red]error:[/] {escape(str(err))}", soft_wrap=True)  # [x] is not markup
        sys.exit(err.exit_code)
    except OSError as err:  # a file the command writes: say what, where and how to fix it
        if (text := describe(err, err.filename or ".", "writing files")) is None:
            raise
        err_console.print(f"[red]error:[/] {escape(text)}", soft_wrap=True)
        sys.exit(2)
