"""File-system failures in words: a full disk, a read-only folder, a name that is too long.

Every place that writes files (the store, checkpoints, reports, exports) turns such an
``OSError`` (or SQLite's version of it) into one paragraph that says what failed, where, how
much space is left and how to fix it, raised as ``DiskError`` (exit code 2). Errors that are
not about the file system are left alone (``describe`` returns None), so a real bug still
shows its traceback.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from batchlab.errors import BatchlabError

FULL = (errno.ENOSPC, errno.EDQUOT)
READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)
# SQLite reports these in words, without an errno
SQLITE_ERRNO = {"database or disk is full": errno.ENOSPC,
                "attempt to write a readonly database": errno.EROFS}
DEFAULT_FIX = "run the same command again: finished runs are kept and the rest resume"


class DiskError(BatchlabError):
    """A file could not be written: the disk is full, the folder is read-only, the name is
    too long, or a file stands where a folder should be. Nothing already stored is lost."""


def existing_ancestor(path: Path) -> Path:
    """``path`` or the nearest folder above it that exists (where free space can be read)."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def free_bytes(path: Path) -> int | None:
    """Free bytes on the file system holding ``path`` (None when it cannot be read)."""
    try:
        return shutil.disk_usage(existing_ancestor(path)).free
    except OSError:
        return None


def human_size(n: int | None) -> str:
    """Bytes in words: 830 bytes, 117.5 KB, 3.2 GB."""
    if n is None:
        return "unknown space"
    if n < 1024:
        return f"{n} bytes"
    size = float(n)
    for unit in ("KB", "MB", "GB", "TB"):
        size /= 1024
        if size < 1024 or unit == "TB":
            break
    return f"{size:.1f} {unit}"


def error_number(err: BaseException) -> int | None:
    """The errno of an OSError, or the one SQLite's message stands for; None otherwise."""
    if isinstance(err, OSError):
        return err.errno
    if isinstance(err, sqlite3.Error):
        text = str(err).lower()
        return next((n for msg, n in SQLITE_ERRNO.items() if msg in text), None)
    return None


def describe(err: BaseException, path: Path | str, doing: str, fix: str = DEFAULT_FIX) -> str | None:
    """One paragraph for a file-system failure at ``path`` while ``doing`` something (e.g.
    "writing the checkpoint of run 3f2a"), or None when ``err`` is not one."""
    code = error_number(err)
    path = Path(getattr(err, "filename", None) or path)
    if code in FULL:
        where = existing_ancestor(path.parent)
        return (f"the disk holding '{where}' is full ({human_size(free_bytes(where))} free) while "
                f"{doing}. Free some space there (or choose a folder on another disk), then {fix}.")
    if code in READ_ONLY:
        return (f"cannot write '{path}' while {doing}: its folder is read-only (or you lack "
                f"permission to write there). Use a folder you can write to, then {fix}.")
    if code == errno.ENAMETOOLONG:
        return (f"the file name '{path.name[:60]}...' ({len(path.name)} characters) is too long "
                f"for the file system while {doing}; choose a shorter name (e.g. with --output).")
    if code == errno.ENOTDIR:
        return (f"cannot use '{path}' while {doing}: a part of that path is a file, not a "
                "folder. Choose a path whose folders are folders.")
    if code == errno.EISDIR:
        return f"'{path}' is a folder, not a file, while {doing}; give the path of a file."
    return None


def disk_error(err: BaseException, path: Path | str, doing: str,
               fix: str = DEFAULT_FIX) -> BaseException:
    """``DiskError`` with ``describe``'s paragraph, or ``err`` itself when it is not about the
    file system: ``raise disk_error(err, ...) from None``."""
    text = describe(err, path, doing, fix)
    return DiskError(text) if text else err


def check_writable_folder(folder: Path, doing: str, fix: str = DEFAULT_FIX) -> None:
    """Make ``folder`` if needed and prove a file can be written there; DiskError otherwise.
    Used before any run starts, so a read-only folder fails the sweep up front, not each run."""
    if folder.exists() and not folder.is_dir():
        raise DiskError(f"'{folder}' is a file, but {doing} needs a folder there; move the file away.")
    probe = folder / f".batchlab-write-test-{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:  # name the folder, not the test file
        named = disk_error(OSError(err.errno, err.strerror), folder, doing, fix)
        if not isinstance(named, DiskError):  # no words for it (e.g. a folder under /proc)
            named = DiskError(f"cannot write in '{folder}' while {doing}: {err.strerror or err}. "
                              f"Use a folder you can write to, then {fix}.")
        raise named from None


@contextmanager
def removed_if_empty(folder: Path) -> Iterator[None]:
    """Remove ``folder`` on leaving when it is empty, however the block ends (nothing left in
    it to resume from); a folder that cannot be removed is left as it is."""
    try:
        yield
    finally:
        try:
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        except OSError:
            pass  # read-only media or a full disk: an empty folder does no harm
