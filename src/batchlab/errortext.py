"""A failed run's error in one line, with where in the user's code it was raised.

A run's stored error is read in tables (``ls``, the sweep's "run ... failed: ...") far from the
traceback, so it carries the user's line: the innermost frame outside the standard library,
installed packages (torch, lightning) and batchlab. An error torch raises inside the user's
``forward`` then names the user's line that called torch, not torch's own file.
"""

from __future__ import annotations

import os
import sysconfig
import traceback
from pathlib import Path


def _library_folders() -> tuple[str, ...]:
    """Where code that is not the user's lives: the standard library, installed packages
    and batchlab itself."""
    paths = sysconfig.get_paths()
    folders = {paths["stdlib"], paths["purelib"], paths["platlib"], str(Path(__file__).parent)}
    return tuple(str(Path(f).resolve()) + os.sep for f in folders)


def error_text(err: BaseException, *, innermost: bool = True) -> str:
    """``err`` in one line, with " (at file.py:LINE in function)" of the innermost frame of the
    user's code; without one (a zoo model, batchlab's own data), the innermost frame of all
    when ``innermost``, else nothing (a model sweep: torch's file would only mislead)."""
    # a message of several lines is joined: the sweep's cause paragraph reads a stored error's
    # last line and the run tables its first, so each must hold the type and the message
    lines = "".join(traceback.format_exception_only(err)).split("\n")
    text = " ".join(line.strip() for line in lines if line.strip())
    frames = traceback.extract_tb(err.__traceback__)
    library = _library_folders()
    own = [f for f in frames if not f.filename.startswith("<frozen")
           and not str(Path(f.filename).resolve()).startswith(library)]
    where = own[-1] if own else (frames[-1] if frames and innermost else None)
    if where is not None:
        text += f" (at {Path(where.filename).name}:{where.lineno} in {where.name})"
    return text
