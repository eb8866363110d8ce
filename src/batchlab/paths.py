"""Safe file names from user-given names (experiment names reach default output paths), and
files that appear whole or not at all.

An experiment may be called anything ("../../escape", "a/b", 300 characters, emoji): inside
the store and the report the name stays as given, but a file name made from it must stay in
the folder it is meant for and fit every file system.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MAX_NAME = 64  # characters; well under the 255-byte limit even with suffixes like -report.html
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(name: str, max_len: int = MAX_NAME) -> str:
    """``name`` as one safe path component: letters, digits, '.', '_' and '-' only, no leading
    dot or dash, at most ``max_len`` characters. A name that is already safe is kept as it is;
    any other gets a short hash of the original appended, so two names that differ only in the
    replaced characters ("a/b", "a-b") still get different files."""
    slug = _UNSAFE.sub("-", name).strip(".-") or "experiment"
    if slug == name and len(name) <= max_len:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{slug[: max_len - 9].rstrip('.-')}-{digest}"


@contextmanager
def written_whole(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write in the block; renamed over ``path`` when the
    block ends (``os.replace`` is atomic), removed when it fails. A crash, a Ctrl-C or a full
    disk midway leaves the previous file (or none), never a truncated one that reads as whole:
    a checkpoint, an export, a decoded-image cache, the hash cache."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # a partial file would hold the space
