"""Epoch checkpoints: everything needed to continue a run bit-for-bit where it stopped.

Written atomically (temp file + rename) so a crash mid-write leaves the previous checkpoint;
a failed write (a full disk) removes its temporary file.
A checkpoint that cannot be read is reported and ignored: the run starts over rather than fail.

Where one lives is a ``CheckpointLocation``: a local file (``Path``), or a
``CheckpointStore`` that keeps the bytes elsewhere (a run on a Ray cluster sends them to the
driver or to a URL every node reaches: ``batchlab.execute.checkpoints``).
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any, Protocol

import torch

from batchlab.paths import written_whole

FORMAT = 1


class CheckpointStore(Protocol):
    """Keeps one run's checkpoint as bytes somewhere other than a local file. ``write``
    replaces the previous checkpoint whole (a failed write keeps it) and raises OSError with
    its errno when the storage refuses (a full disk); ``read`` is None when there is none;
    ``remove`` does nothing when there is none. ``str()`` names the place in messages."""

    def write(self, data: bytes) -> None: ...

    def read(self) -> bytes | None: ...

    def remove(self) -> None: ...


CheckpointLocation = Path | CheckpointStore


def write_file(path: Path, data: bytes) -> None:
    """Atomically replace ``path`` with ``data`` (temp file + rename, folders made as needed).
    On any failure the temporary file is removed and the previous file is kept."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with written_whole(path) as tmp:
        tmp.write_bytes(data)


def save_checkpoint(path: CheckpointLocation, state: dict[str, Any]) -> None:
    """Atomically write ``state`` (tensors, RNG states, counters) to ``path``.

    On any failure the previous checkpoint is kept (and no temporary file is left); a full
    disk or a read-only folder raises OSError with its errno (ENOSPC, EROFS, ...)."""
    # serialised in memory first: torch's own file writer reports a full disk as a RuntimeError
    # without an errno ("unexpected pos"), a plain write raises OSError(ENOSPC)
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, **state}, buffer)
    if isinstance(path, Path):
        write_file(path, buffer.getvalue())
    else:
        path.write(buffer.getvalue())


def load_checkpoint(path: CheckpointLocation, run_id: str) -> dict[str, Any] | None:
    """The checkpoint's state, or None when there is none or it is unreadable (with a warning)."""
    if isinstance(path, Path) and not path.is_file():
        return None
    try:
        if isinstance(path, Path):
            state = torch.load(path, map_location="cpu", weights_only=False)
        elif (data := path.read()) is None:
            return None
        else:
            state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)
        if not isinstance(state, dict) or state.get("format") != FORMAT or state.get("run_id") != run_id:
            raise ValueError("not a batchlab checkpoint of this run")
    except Exception as err:  # a truncated or foreign file: start over, do not crash the sweep
        warnings.warn(
            f"checkpoint {path} is unreadable ({err}); run {run_id} restarts from scratch",
            stacklevel=2,
        )
        return None
    return state


def resumable(path: CheckpointLocation, run_id: str, max_resume_step: int | None) -> dict[str, Any] | None:
    """The checkpoint state a run resumes from: ``load_checkpoint``'s, when its step is at most
    ``max_resume_step`` (the last step the store holds every row for; None = any); else None
    (the run starts from scratch). The loop and ``batchlab sweep --dry-run`` both ask this."""
    state = load_checkpoint(path, run_id)
    if state is None or (max_resume_step is not None and state["step"] > max_resume_step):
        return None
    return state


def remove_checkpoint(path: CheckpointLocation) -> None:
    if isinstance(path, Path):
        path.unlink(missing_ok=True)
    else:
        path.remove()
