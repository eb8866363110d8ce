"""Epoch checkpoints: everything needed to continue a run bit-for-bit where it stopped.

Written atomically (temp file + rename) so a crash mid-write leaves the previous checkpoint;
a failed write (a full disk) removes its temporary file.
A checkpoint that cannot be read is reported and ignored: the run starts over rather than fail.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Any

import torch

FORMAT = 1


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Atomically write ``state`` (tensors, RNG states, counters) to ``path``.

    On any failure the temporary file is removed and the previous checkpoint is kept; a full
    disk or a read-only folder raises OSError with its errno (ENOSPC, EROFS, ...)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
    # serialised in memory first: torch's own file writer reports a full disk as a RuntimeError
    # without an errno ("unexpected pos"), a plain write raises OSError(ENOSPC)
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, **state}, buffer)
    try:
        with open(tmp, "wb") as f:
            f.write(buffer.getbuffer())
        os.replace(tmp, path)
    except BaseException:
        if tmp.exists():
            tmp.unlink()  # a partial file would hold the space and look like a checkpoint
        raise


def load_checkpoint(path: Path, run_id: str) -> dict[str, Any] | None:
    """The checkpoint's state, or None when there is none or it is unreadable (with a warning)."""
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
        if not isinstance(state, dict) or state.get("format") != FORMAT or state.get("run_id") != run_id:
            raise ValueError("not a batchlab checkpoint of this run")
    except Exception as err:  # a truncated or foreign file: start over, do not crash the sweep
        warnings.warn(
            f"checkpoint {path} is unreadable ({err}); run {run_id} restarts from scratch",
            stacklevel=2,
        )
        return None
    return state


def remove_checkpoint(path: Path) -> None:
    path.unlink(missing_ok=True)
