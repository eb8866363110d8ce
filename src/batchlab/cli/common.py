"""Shared pieces of the command line: the typer app, consoles, common options, formatting.

Start-up time matters here: ``batchlab --help``, ``ls`` and ``show`` must answer in a fraction
of a second, and importing torch alone takes 1.5-3 s. So this module and every command module
import only typer, rich and light batchlab modules at the top; a command that trains or probes
imports what it needs inside its function (``bench/cli_startup.py`` measures it).
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import click
import typer
from rich.console import Console
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from batchlab.errors import BatchlabError

if TYPE_CHECKING:
    from batchlab.spec import Spec

# Help shows a word for what an option takes, as man pages do ("--workers N"), instead of
# typer's Python type names ("<int range>", "<list[str]>", "<bool>" after a plain flag).
_METAVARS = {"int": "N", "float": "NUMBER", "str": "TEXT", "path": "PATH", "file": "FILE"}


def _readable(params: list[click.Parameter]) -> list[click.Parameter]:
    for p in params:
        if isinstance(p, TyperOption) and p.metavar is None:
            if p.is_flag:
                p.metavar = ""
            else:
                bare = p.display_type(click.Context(click.Command("x"))).strip("<>")
                bare = bare.removeprefix("list[").removesuffix("]").removesuffix(" range")
                p.metavar = _METAVARS.get(bare, bare.upper())
        elif isinstance(p, TyperArgument):
            if p.metavar is None and p.name:
                p.metavar = p.name.upper().removesuffix("_FILE")
            # the name says what it is: no "<path>" beside it, and "SPEC" rather than "{SPEC}"
            # in the usage line (optional ones keep their [brackets])
            name = p.metavar + ("..." if p.nargs == -1 else "")  # FILES... takes several
            usage = name if p.required else f"[{name}]"
            p.display_type_rich = lambda ctx: None  # type: ignore[method-assign]
            p._usage_display_name = lambda usage=usage: usage  # type: ignore[method-assign]
    return params


class ReadableCommand(TyperCommand):
    """A command whose help names values in words (see ``_METAVARS``)."""

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        return _readable(super().get_params(ctx))


class ReadableGroup(TyperGroup):
    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        return _readable(super().get_params(ctx))


class _App(typer.Typer):
    def command(self, *args: Any, **kwargs: Any) -> Any:  # every command gets readable help
        kwargs.setdefault("cls", ReadableCommand)
        return super().command(*args, **kwargs)


def readable_app(**kwargs: Any) -> typer.Typer:
    """A typer app (the program, or a group of sub-commands such as ``import``) whose help
    names values in words: every command and group it holds gets ``ReadableCommand``'s help."""
    return _App(
        add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
        cls=ReadableGroup,
        # markdown: a docstring's single line breaks are joined, so summaries read as prose
        rich_markup_mode="markdown", **kwargs,
    )


app = readable_app()
# tables are wide: when writing to a file or a pipe, do not squeeze them into 80 columns; and
# there a line of text stays one line (soft_wrap), as a log needs: rich would cut it at the
# width, 80 columns on stderr ("run 1a2b failed: ... (at late.py:7 in\nforward)")
console = Console() if sys.stdout.isatty() else Console(width=180, soft_wrap=True)
err_console = Console(stderr=True) if sys.stderr.isatty() else Console(stderr=True, soft_wrap=True)



def import_torch() -> None:
    """Import torch under a spinner saying so: on a tiny config it is most of the silent
    seconds (1.5-3 s) before a training or probing command's first line. A no-op once torch
    is imported; on a pipe or file the spinner prints nothing."""
    if "torch" not in sys.modules:
        with on_ctrl_c("nothing had started; nothing was stored."), \
                console.status("starting: importing torch ..."):
            import torch  # noqa: F401


@contextmanager
def on_ctrl_c(kept: str) -> Iterator[None]:
    """Ctrl-C inside the block: one line, ``interrupted: <kept>``, on stderr, then exit 130.

    ``kept`` says what was kept and how to continue. Without it typer ends a Ctrl-C silently
    with 130, and the user cannot tell whether anything was stored."""
    try:
        yield
    except KeyboardInterrupt:
        interrupted(kept)


def interrupted(kept: str) -> NoReturn:
    """Say ``interrupted: <kept>`` on stderr (what was kept, how to continue); exit 130."""
    err_console.print(f"interrupted: {kept}", soft_wrap=True, markup=False, highlight=False)
    raise typer.Exit(130) from None


StoreOpt = Annotated[Path, typer.Option("--store", metavar="FILE", help="SQLite store file.")]


def _store_folder_exists(path: Path) -> Path:
    """``--store`` of a command that creates the store when missing: its folder must exist,
    and the path must be able to hold a file (not a folder, not under a file).

    A mistyped folder would otherwise be made and a fresh store started there, so a sweep would
    train everything again beside the real store. Checked when the command line is parsed,
    before a probe spends minutes measuring (`lr-find --store .` trained its miniatures, then
    was refused when it stored them; `sweep --dry-run` listed runs it could never store)."""
    from batchlab.store.files import check_folder, check_path

    check_folder(path)
    check_path(path)
    return path


# the --store of commands that write to the store, creating it when missing (sweep, probes,
# import): a new file in an existing folder, never a new folder
NewStoreOpt = Annotated[Path, typer.Option(
    "--store", metavar="FILE", callback=_store_folder_exists,
    help="SQLite store file (created when missing, in an existing folder).")]
def output_file(raw: str | None, default: Path) -> Path | None:
    """``--output`` of a command that writes one file, as a Path; None when not given. The
    option is a ``str``, not a ``Path``, so that a trailing '/' reaches this check.

    A folder is refused (BatchlabError, exit 2, before anything is written), suggesting
    ``default``'s file name in it: an existing one, one written with a trailing separator
    ('out/', which pathlib would turn into a file named 'out'), or a path with no file name
    ('.', '/', which made the report fail with a traceback)."""
    if raw is None:
        return None
    path = Path(raw)
    if raw.endswith(("/", os.sep)) or path.is_dir() or path.name in ("", ".", ".."):
        raise BatchlabError(f"--output '{raw}' is a folder, and this command writes one file; "
                            f"give the path of a file, e.g. --output {path / default.name}.")
    return path


SetOpt = Annotated[list[str] | None, typer.Option(
    "--set", metavar="KEY=VALUE",
    help='Override a spec field, e.g. train.lr=0.05 or sweep.grid."train.batch_size"=[64] '
         "(repeatable).")]
WorkersOpt = Annotated[int, typer.Option("--workers", "-w", min=1, help="Parallel processes.")]
SpecArg = Annotated[Path, typer.Argument(metavar="SPEC", help="TOML spec file.")]
DEFAULT_STORE = Path("batchlab.db")


def load_cli_spec(spec_file: Path, sets: list[str] | None) -> Spec:
    """Load a spec with the command line's --set overrides; say what an override replaced."""
    from batchlab.spec import load_spec  # pydantic: only for the commands that read a spec

    notes: list[str] = []
    spec = load_spec(spec_file, sets or [], notes)
    for note in notes:
        err_console.print(f"note: {note}", soft_wrap=True, markup=False)
    return spec


def fmt(value: Any, digits: int = 4) -> str:
    """A table cell: '-' for missing, ``digits`` significant digits for floats."""
    if value is None:
        return "-"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.{digits}g}"
    return str(value)


def plural(n: int, word: str, many: str | None = None) -> str:
    """'1 run', '2 runs' (``many`` for irregular plurals)."""
    return f"{n} {word if n == 1 else (many or word + 's')}"


# what a finished command's shutdown may take before it is cut short: generous, as a Ray
# executor's shutdown (ray.shutdown at exit, ending its local cluster) takes seconds
EXIT_GRACE_S = 45.0


def exit_within(code: int, grace: float = EXIT_GRACE_S) -> None:
    """Make sure this process ends with ``code`` within ``grace`` seconds from now, even when
    its normal shutdown (atexit handlers, finalizers, other threads) does not return.

    For the way out after Ctrl-C, once everything that matters is stored and every worker is
    ended: the user expects the prompt back. (In CI, one `sweep --workers 2` printed
    "interrupted" and then had not exited 60 s later; where it hung was not caught.) A daemon
    thread sleeps ``grace`` seconds, flushes the streams and calls ``os._exit``; a normal
    shutdown (under a second for the local pool, a few seconds with Ray) ends the process
    long before.
    """
    import os
    import threading
    import time

    def cut_short() -> None:
        time.sleep(grace)
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass  # closed already: nothing to flush
        os._exit(code)

    threading.Thread(target=cut_short, name="batchlab-exit-within", daemon=True).start()
