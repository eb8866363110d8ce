"""Shared file helpers: every format reads its files through these, so a bad file is a DataError.

The contract for all formats: a missing, truncated, corrupt or mis-shaped file never escapes
``load_dataset`` as a raw ``OSError``/``KeyError``/``struct.error``...; it becomes a
:class:`~batchlab.errors.DataError` whose one-paragraph message names the file, says what is
wrong and how to fix it.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from batchlab.errors import DataError
from batchlab.spec import DataSpec

NAMED_AT_MOST = 10  # unreadable files named in one message; the rest are counted


class UnreadableFiles(DataError):
    """Files that could not be parsed, all named in one paragraph: a pass that reads every
    file (decoding an image folder) collects them and raises once, so the user finds every
    bad file in one try instead of one per try. ``failures`` holds (path, why) pairs."""

    def __init__(self, failures: list[tuple[str, str]], fix: str) -> None:
        self.failures, self.fix = list(failures), fix
        super().__init__(_unreadable(self.failures, fix))

    def __reduce__(self) -> tuple[type, tuple[list[tuple[str, str]], str]]:
        return UnreadableFiles, (self.failures, self.fix)  # crosses loader processes intact

    @staticmethod
    def merge(errors: list[UnreadableFiles]) -> UnreadableFiles:
        """One error naming every file of ``errors`` (which share their fix)."""
        return UnreadableFiles([f for e in errors for f in e.failures], errors[0].fix)


def _unreadable(failures: list[tuple[str, str]], fix: str) -> str:
    if len(failures) == 1:
        path, why = failures[0]
        return f"file '{path}' could not be read ({why}); {fix}."
    # Pillow repeats the file's name in its reason: say it once
    named = "; ".join(f"'{path}' ({why.replace(f' {path!r}', '')})"
                      for path, why in failures[:NAMED_AT_MOST])
    more = len(failures) - NAMED_AT_MOST
    more_text = f"; and {more} more" if more > 0 else ""
    fix = fix.replace("the file", "each file")
    return f"{len(failures)} files could not be read: {named}{more_text}; {fix}."


def fail(subject: str, problem: str, fix: str) -> DataError:
    """A DataError reading '<subject> <problem>; <fix>.' (one paragraph, names the culprit)."""
    return DataError(f"{subject} {problem}; {fix}.")


def no_test_split(name: str, why: str = "", remedy: str = "") -> DataError:
    """The error for ``validation = "test"`` on data that has no test split of its own.

    ``why`` says what is missing (": 'x.npz' has no x_test array"), ``remedy`` how to add it.
    """
    fix = 'use data.validation = "split" to hold out data.val_fraction of the training data'
    fix = f"{remedy}, or {fix}" if remedy else fix
    return fail(f"data.name = {name!r}", f"has no test split{why}", fix)


def data_path(spec: DataSpec, *, folder: bool, fix: str) -> Path:
    """``spec.path`` as a Path, checked to exist and to be a folder (or a file)."""
    path = Path(str(spec.path)).expanduser()
    if not path.exists():
        # a spec in another folder than the one batchlab runs in is the usual cause
        where = "" if path.is_absolute() else (
            f" (a relative data.path is read from the current folder, '{Path.cwd()}', not the "
            "spec file's)")
        raise fail(f"data.path '{path}'", f"does not exist{where}", fix)
    if folder and not path.is_dir():
        # the archive a data set is downloaded as (cifar-10-python.tar.gz, a zip of images)
        archive = any(path.name.lower().endswith(s) for s in (".tar.gz", ".tgz", ".tar", ".zip"))
        problem = "is an archive, not a folder: extract it first" if archive else "is a file, not a folder"
        raise fail(f"data.path '{path}'", problem, fix)
    if not folder and not path.is_file():
        raise fail(f"data.path '{path}'", "is a folder, not a file", fix)
    return path


def find_file(folder: Path, name: str, fix: str, also: tuple[str, ...] = ()) -> Path:
    """``folder/name``, or ``folder/name.gz`` when only the gzipped copy exists; ``also``: other
    names the same file goes by, tried in turn. When none is there, the error names the folder
    one or two levels down that has it (torchvision downloads MNIST into MNIST/raw/)."""
    names = (name, *also)
    for candidate in (folder / f"{n}{gz}" for n in names for gz in ("", ".gz")):
        if candidate.is_file():
            return candidate
    deeper = sorted(p.parent for n in names for pattern in (f"*/{n}", f"*/*/{n}")
                    for gz in ("", ".gz") for p in folder.glob(pattern + gz) if p.is_file())
    hint = f" ('{deeper[0]}' has it: point data.path there)" if deeper else ""
    raise fail(f"data.path '{folder}'", f"has no {name}[.gz]{hint}", fix)


@contextmanager
def reading(path: Path, fix: str) -> Iterator[None]:
    """Turn any failure inside the block into a DataError naming ``path``.

    Wrap only the code that parses the file's bytes. It catches every Exception on purpose: the
    parsers of untrusted bytes (pickle, Pillow, numpy's .npy header, zipfile, gzip) raise far more
    than OSError and ValueError on damaged input (struct.error, UnpicklingError, SyntaxError,
    tokenize.TokenError, NotImplementedError, MemoryError...), and each of those means one thing
    to the user: this file is unreadable.
    """
    try:
        yield
    except DataError:
        raise
    except Exception as err:
        raise UnreadableFiles([(str(path), f"{type(err).__name__}: {err}")], fix) from err


def read_bytes(path: Path, fix: str) -> bytes:
    """The content of ``path``, gunzipped when its name ends in ``.gz``."""
    with reading(path, fix):
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()


def labels_tensor(
    labels: np.ndarray, where: str, fix: str, num_classes: int | None = None,
    negative_ok: bool = False,
) -> torch.Tensor:
    """Validate class labels (1-D, whole numbers, 0 <= y < num_classes) and return them as int64.

    Float labels are accepted when every value is a whole number, because arrays that passed
    through pandas or MATLAB often arrive as float64. ``negative_ok``: negative labels pass
    (a format whose labels the caller remaps to 0..K-1, such as {-1, 1} in an .npz).
    """
    y = np.asarray(labels)
    if y.ndim != 1:
        raise fail(where, f"must be a 1-D array of class labels, got shape {y.shape}", fix)
    if y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
        y = y.astype(np.int64)
    if y.dtype.kind not in "iub":
        raise fail(where, f"must hold integer class labels, got dtype {y.dtype}", fix)
    y = y.astype(np.int64)
    if not negative_ok and y.size and y.min() < 0:
        raise fail(where, f"has a negative label ({int(y.min())}); labels must be 0..K-1", fix)
    if num_classes is not None and y.size and y.max() >= num_classes:
        problem = f"has label {int(y.max())}, but this format has only {num_classes} classes"
        raise fail(where, problem, fix)
    return torch.from_numpy(y)


def regression_targets(targets: np.ndarray, where: str, fix: str) -> torch.Tensor:
    """Validate regression targets (N,) or (N, k), numeric and finite; return them as float32.

    The shape is kept: (N,) stays (N,) and the built-in loss (``train.inputs.spec_loss``)
    lines a model's (N, 1) output up with it, so the two are never broadcast to (N, N).
    """
    y = np.asarray(targets)
    if y.dtype.kind not in "biuf":
        raise fail(where, f"must hold numeric regression targets, got dtype {y.dtype}", fix)
    if y.ndim not in (1, 2) or (y.ndim == 2 and y.shape[1] == 0):
        problem = f"must be (N,) or (N, k) regression targets, got shape {y.shape}"
        raise fail(where, problem, fix)
    y = y.astype(np.float32)
    if not np.isfinite(y).all():
        raise fail(where, "contains NaN or infinite targets", "drop or impute those rows, then " + fix)
    return torch.from_numpy(y)


def images_tensor(pixels: np.ndarray) -> torch.Tensor:
    """uint8 pixels of shape (N, C, ...) as float32 in [0, 1]."""
    return torch.from_numpy(pixels.astype(np.float32)).div_(255.0)
