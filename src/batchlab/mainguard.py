"""Is ``bl.sweep(..., workers=N)`` called from a script's unguarded top level?

Worker processes are spawned, and a spawned process imports the main script again before it
runs anything. A script that calls ``bl.sweep(workers=2)`` at its top level (not under
``if __name__ == "__main__":``) therefore starts the sweep again inside every worker, where
it finds its runs claimed by the parent sweep and waits for them, while the parent waits for
its workers: a hang with the plan printed once per process. This module finds that case in
the parent, before any worker starts, by reading the script's own source (``ast``): the
top-level statement now running is either the ``__main__`` guard or it is not.
Imports nothing heavy.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from types import FrameType


def _is_main_guard(node: ast.stmt) -> bool:
    """``if __name__ == "__main__":`` (either side of the ``==``, possibly within an ``and``)."""
    if not isinstance(node, ast.If):
        return False
    for part in ast.walk(node.test):
        if isinstance(part, ast.Compare) and len(part.comparators) == 1:
            sides = [part.left, part.comparators[0]]
            names = [s.id for s in sides if isinstance(s, ast.Name)]
            texts = [s.value for s in sides if isinstance(s, ast.Constant)]
            if names == ["__name__"] and texts == ["__main__"]:
                return True
    return False


def _main_frame() -> FrameType | None:
    """The frame of the main script's top-level code: ``__main__``, or ``__mp_main__`` while a
    spawned worker imports the script again (None: no such frame in this thread's stack)."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "<module>" and \
                frame.f_globals.get("__name__") in ("__main__", "__mp_main__"):
            return frame
        frame = frame.f_back
    return None


def unguarded_line() -> tuple[str, int] | None:
    """(script, line) of the main script's top-level statement now running when it is not
    under ``if __name__ == "__main__":``; None when it is, or when there is no script file
    that a spawned worker would import again (a notebook, ``python -c``, an interpreter)."""
    frame = _main_frame()
    path = None if frame is None else frame.f_globals.get("__file__")
    if frame is None or not isinstance(path, str):
        return None
    try:
        tree = ast.parse(Path(path).read_text())
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return None  # a frozen or generated main: nothing to read, nothing to say
    line = frame.f_lineno
    for node in tree.body:
        if node.lineno <= line <= (node.end_lineno or node.lineno):
            return None if _is_main_guard(node) else (path, node.lineno)
    return None


def unguarded_message(call: str, workers: int) -> str | None:
    """The error for ``call`` (``bl.sweep``) with ``workers`` > 1 from an unguarded top
    level, or None when the call is guarded (or there is no script)."""
    where = unguarded_line()
    if where is None:
        return None
    path, line = where
    return (f"workers={workers}: {call} runs at the top level of the script {path} (line {line}), "
            "and every worker process imports the script again when it starts (workers are "
            "spawned), so each would start the sweep again and wait for it forever. Put the code "
            "that calls it under `if __name__ == \"__main__\":`, or use workers=1.")
