"""Checkpoints that travel: storage every node of a Ray cluster reaches (``--checkpoint-storage``).

A run on a cluster trains on whichever node Ray picks, and a retry after a node dies trains on
another one; a checkpoint file beside the store, on the driver's disk, is out of their reach
without a shared filesystem. So the Ray executor gives each task, in place of the driver's
path, a ``CheckpointStore`` (``batchlab.train.checkpoint``) that is pickled with the task:

- ``DriverCheckpoint`` (the default): the bytes go through Ray to a small actor on the
  driver's node (``DriverFiles``), which writes them to the usual file beside the store, so a
  later sweep, ``batchlab rm`` and every executor find them there as ever. A retry on any node
  reads them back from it. Nothing but Ray connects the nodes.
- ``UriCheckpoint``: a folder given as an fsspec URL, as Ray Tune's ``storage_path`` is: a
  local path or NFS mount every node sees, ``s3://bucket/prefix`` (with ``s3fs``), ``gs://``
  (with ``gcsfs``), ... Each run's checkpoint is ``<folder>/<run id>.pt``.

Either way a checkpoint is trusted only up to the step the store holds every row for (the
task asks the driver at its start), as with files.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchlab.errors import BatchlabError
from batchlab.execute.base import RunTask
from batchlab.fserrors import check_writable_folder
from batchlab.train.checkpoint import write_file

LOCAL_PROTOCOLS = ("file", "local")
HOW = ("Give a folder every node can reach: a local or NFS path, file:///shared/ckpt, "
       "s3://bucket/prefix (pip install s3fs), gs://bucket/prefix (pip install gcsfs), or leave "
       "--checkpoint-storage out to keep checkpoints beside the store, sent through Ray.")


def check_storage(uri: str) -> str:
    """Check ``--checkpoint-storage`` on the driver and return it as every node will use it
    (a local path made absolute). BatchlabError saying what to fix when it is empty, names a
    protocol fsspec does not know or whose package is missing, keeps its files in one process
    (``memory://``), or is a local folder that cannot be written."""
    import fsspec
    from fsspec.core import split_protocol

    text = uri.strip()
    protocol, rest = split_protocol(text)
    if not text or (protocol is not None and not rest.strip("/")):
        raise BatchlabError(f"--checkpoint-storage '{uri}' names no folder. {HOW}")
    try:
        fsspec.get_filesystem_class(protocol or "file")
    except ValueError:
        raise BatchlabError(f"--checkpoint-storage '{uri}': the protocol '{protocol}://' is not "
                            f"known to fsspec. {HOW}") from None
    except ImportError as err:
        raise BatchlabError(f"--checkpoint-storage '{uri}' needs a package that is not "
                            f"installed ({err}). Install it on the driver and on every node, "
                            "or use another storage.") from None
    if protocol == "memory":
        raise BatchlabError(f"--checkpoint-storage '{uri}' keeps its files inside one process, "
                            f"where no other node (nor a retry) can read them. {HOW}")
    if protocol is None or protocol in LOCAL_PROTOCOLS:
        folder = Path(rest).expanduser().absolute()  # the driver's folder, not the workers'
        check_writable_folder(folder, "writing the runs' checkpoints (--checkpoint-storage)",
                              "run the same command again")
        return str(folder)
    return text.rstrip("/")


@dataclass(frozen=True)
class UriCheckpoint:
    """One run's checkpoint at an fsspec URL (a ``CheckpointStore``)."""

    url: str

    def _fs(self) -> tuple[Any, str]:
        from fsspec.core import url_to_fs

        return url_to_fs(self.url)

    def write(self, data: bytes) -> None:
        from fsspec.implementations.local import LocalFileSystem

        fs, path = self._fs()
        if isinstance(fs, LocalFileSystem):
            write_file(Path(path), data)  # temp file + rename: a kill mid-write keeps the last one
        else:
            fs.pipe_file(path, data)  # one object PUT: whole or not at all

    def read(self) -> bytes | None:
        fs, path = self._fs()
        try:
            return fs.cat_file(path)
        except FileNotFoundError:
            return None

    def remove(self) -> None:
        fs, path = self._fs()
        try:
            fs.rm_file(path)
        except FileNotFoundError:
            pass

    def __str__(self) -> str:
        return self.url


class DriverFiles:
    """A Ray actor on the driver's node (``batchlab.execute.ray`` pins it there): reads, writes
    and removes checkpoint files on the driver's disk for tasks on any node. A failed write
    comes back as (errno, text, path), so the task raises the OSError the loop describes."""

    def write(self, path: str, data: bytes) -> tuple[int | None, str, str] | None:
        try:
            write_file(Path(path), data)
        except OSError as err:
            return err.errno, err.strerror or str(err), path
        return None

    def read(self, path: str) -> bytes | None:
        try:
            return Path(path).read_bytes()
        except FileNotFoundError:
            return None

    def remove(self, path: str) -> None:
        Path(path).unlink(missing_ok=True)


@dataclass(frozen=True)
class DriverCheckpoint:
    """One run's checkpoint file on the driver's disk, reached through the ``DriverFiles``
    actor ``files`` (a ``CheckpointStore``)."""

    files: Any  # the actor's handle
    path: str

    def write(self, data: bytes) -> None:
        import ray

        if (failed := ray.get(self.files.write.remote(self.path, data))) is not None:
            raise OSError(*failed)

    def read(self) -> bytes | None:
        import ray

        return ray.get(self.files.read.remote(self.path))

    def remove(self) -> None:
        import ray

        ray.get(self.files.remove.remote(self.path))

    def __str__(self) -> str:
        return f"{self.path} (on the driver)"


def travelling(task: RunTask, storage: str | None, files: Any) -> RunTask:
    """``task`` with its checkpoint where every node reaches it: at ``storage`` (a URL checked
    by ``check_storage``) or, when None, its own file on the driver through the
    ``DriverFiles`` actor ``files``. A task without a checkpoint is returned as it is."""
    if task.checkpoint_path is None:
        return task
    if storage is None:
        where: Any = DriverCheckpoint(files, str(task.checkpoint_path))
    else:
        where = UriCheckpoint(f"{storage}/{task.run_id}.pt")
    return dataclasses.replace(task, checkpoint_path=where)
