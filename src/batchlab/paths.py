"""Safe file names from user-given names (experiment names reach default output paths).

An experiment may be called anything ("../../escape", "a/b", 300 characters, emoji): inside
the store and the report the name stays as given, but a file name made from it must stay in
the folder it is meant for and fit every file system.
"""

from __future__ import annotations

import hashlib
import re

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
