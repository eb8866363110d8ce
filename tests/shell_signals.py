"""Starting a child process the way a user's shell would, for the Ctrl-C tests."""

import signal


def sigint_as_in_a_terminal() -> None:
    """``preexec_fn`` for a child that must take Ctrl-C: SIGINT back to its default action.

    Why: a test runner started in the background of a non-interactive shell (``cmd &``,
    ``nohup``) ignores SIGINT, children inherit that, and Python then installs no
    KeyboardInterrupt handler, so the test's SIGINT would do nothing. A terminal does not.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def session_processes(sid: int) -> str:
    """Every live process of session ``sid`` (a child started with ``start_new_session``: its
    pid) with its state and command line, read from /proc: what a test that timed out waiting
    for such a child reports, so that a hang seen once in CI says where it hung."""
    from pathlib import Path

    lines = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) != sid:  # fields: state, ppid, pgrp, session, ...
                continue
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            lines.append(f"pid {d.name} ppid {fields[1]} state {fields[0]}: {cmd[:160]}")
        except (OSError, IndexError, ValueError):
            continue  # it exited meanwhile
    return "\n".join(sorted(lines)) or "(none left)"
