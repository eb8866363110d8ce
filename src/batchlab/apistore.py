"""The Python API's ``store=`` argument: its type, an early check, and errors in the API's words.

The store's own errors are written for the CLI (``Pass --store with a new file name``); a
Python caller has no ``--store`` flag, so ``api_store_errors`` rewrites a message raised
inside an API call to speak of ``store=`` instead, leaving the CLI's wording untouched.
``check_store`` runs the store's checks before a probe or an ``lr = "auto"`` range test
trains, so a bad path fails before the work rather than after it (the result would be lost).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from batchlab.errors import BatchlabError, SpecError, StoreError


def store_path(store: Any, call: str, default: bool = True) -> Path:
    """``store`` as a Path, ``~`` expanded as ``data.path`` is (a Python string is not the
    shell's: ``store="~/study.db"`` was refused for its missing folder '~', with the advice to
    make it: ``mkdir -p '~'``); SpecError naming ``call`` (``batchlab.sweep('x')``) when it is
    not a path. ``default``: the call has a default store (batchlab.db), which the error offers."""
    if isinstance(store, str | os.PathLike) and str(store).strip():
        return Path(store).expanduser()
    tail = "; leave it out for batchlab.db in the current folder" if default else ""
    raise SpecError(f"{call}: store={store!r} must be the path of the store file (a str or "
                    f"pathlib.Path), e.g. store='study.db'{tail}.")


def api_wording(text: str) -> str:
    """A store error's text with the CLI's ``--store`` flag said as the API's ``store=``."""
    text = re.sub(r"--store '([^']*)'", r"store='\1'", text)  # --store 'x' is a folder
    text = text.replace("another --store", "another store= path")
    # e.g. --store x/batchlab.db. -> e.g. store='x/batchlab.db'. (not "--store with ...")
    text = re.sub(r"--store (?!with\b)([^\s,;']+?)([.,;]?(?:\s|$))", r"store='\1'\2", text)
    return text.replace("--store", "store=")


@contextmanager
def api_store_errors() -> Iterator[None]:
    """Re-raise a BatchlabError whose message names the ``--store`` flag with the API's
    wording, as the same error type (its cause kept); every other error passes unchanged."""
    try:
        yield
    except BatchlabError as err:
        if "--store" not in str(err):
            raise
        try:
            again = type(err)(api_wording(str(err)))
        except Exception:  # an error type that takes other arguments: keep it as it is
            raise err from err.__cause__
        raise again.with_traceback(err.__traceback__) from err.__cause__


def check_store(path: Path) -> None:
    """Fail now, in the API's words, where ``Store(path)`` would fail later: a folder or a
    file in the way, a file that is not a batchlab store (or of a newer schema), a folder
    this process cannot write. A missing store is not created here: bad input found after
    this check must leave no empty store behind; nor is a missing folder (``check_folder``)."""
    from batchlab.fserrors import existing_ancestor
    from batchlab.store import Store
    from batchlab.store.files import check_folder, check_path, store_exists

    with api_store_errors():
        check_path(path)
        check_folder(path)
        if store_exists(path):
            Store(path).close()  # an existing store opens for writing as the call will
            return
        folder = existing_ancestor(path.parent)
        if not os.access(folder, os.W_OK):
            raise StoreError(f"store '{path}' cannot be created: the folder '{folder}' is not "
                             "writable; pass store= with a file in a folder you can write to.")
