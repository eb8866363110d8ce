"""The decoded cache (``data.cache = true``): each image decoded and resized once, ever.

An image folder's part (train or test) is decoded into one uint8 array (N, S, S, 3) stored as
a ``.npy`` file in the cache folder (``data.cache_dir``, else ``$BATCHLAB_CACHE``, else
``~/.cache/batchlab``; the folder the MNIST-1D arrays and the file-hash cache use), under
``decoded/``. Its name holds the data's fingerprint (``batchlab.fingerprint``: the names and
bytes of every file under ``data.path``) and the image size, so replacing an image or
changing ``image_size`` makes a new file and a stale one is never read.

Written once: a lock file serialises builders (concurrent runs and sweeps wait for the first
one instead of decoding too) and the array is written to a temporary file renamed into place,
so a reader sees the whole file or none. Readers open it with ``np.load(mmap_mode="r")``:
every run and loader process shares the operating system's page cache, none holds a copy.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset

from batchlab.data.builtin import cache_dir
from batchlab.data.images import read_image
from batchlab.data.loader import Failed, collate, guarded, unwrap, worker_options
from batchlab.fingerprint import HashCache, data_fingerprint, default_cache_file
from batchlab.paths import written_whole
from batchlab.spec import DataSpec

# bump when the decoding changes (v2: torchvision.io for JPEG/PNG; v3: a 16-bit PNG scaled to
# 8 bits, no longer clipped): old files are not read
FORMAT = "v3"
BUILD_CHUNK = 64  # images per loader batch while building


def cache_file(spec: DataSpec, part: str) -> Path | None:
    """Where ``part`` ("train" or "test") of ``spec``'s folder is cached; None when the data has
    no fingerprint (no readable path)."""
    hashes = HashCache(default_cache_file(spec))
    digest = data_fingerprint(spec, hashes)
    hashes.save()  # the next run stats each file instead of hashing it again
    if digest is None:
        return None
    name = f"{digest[:24]}-{part}-{spec.image_size}px-{FORMAT}.npy"
    return cache_dir(spec) / "decoded" / name


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if needed); POSIX advisory lock, a no-op
    where fcntl is missing (the atomic rename still keeps readers safe there)."""
    try:
        import fcntl
    except ImportError:  # Windows: two builders may both decode; both write the same bytes
        yield
        return
    with open(path, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _open(path: Path, n: int, size: int) -> np.ndarray | None:
    """The cached array read-only and memory-mapped, or None when absent or not the expected
    shape (then it is rebuilt)."""
    try:
        pixels = np.load(path, mmap_mode="r")
    except (OSError, ValueError):
        return None
    return pixels if pixels.shape == (n, size, size, 3) and pixels.dtype == np.uint8 else None


class _Decode(TorchDataset):
    """Image i of ``paths`` decoded at ``size``: what the loader processes do while building."""

    def __init__(self, paths: list[Path], size: int, decode: Callable[[Path, int], np.ndarray]):
        self.paths, self.size, self.decode = paths, size, decode

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor | Failed:
        # Pillow's buffer is read-only; torch wants a writable one (a 3*S*S-byte copy)
        return guarded(lambda: torch.from_numpy(np.array(self.decode(self.paths[i], self.size))))


def _build(path: Path, paths: list[Path], size: int, workers: int,
           decode: Callable[[Path, int], np.ndarray]) -> None:
    """Decode every image into a temporary .npy beside ``path``, then rename it into place."""
    with written_whole(path) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8,
                                        shape=(len(paths), size, size, 3))
        loader = DataLoader(_Decode(paths, size, decode), batch_size=BUILD_CHUNK,
                            collate_fn=collate, **worker_options(workers))
        start = 0
        for chunk in unwrap(loader, every=True):  # every bad image named at once
            out[start : start + len(chunk)] = chunk.numpy()
            start += len(chunk)
        out.flush()
        del out


def decoded_pixels(path: Path, paths: list[Path], size: int, workers: int = 0,
                   decode: Callable[[Path, int], np.ndarray] = read_image) -> np.ndarray:
    """The (N, S, S, 3) uint8 pixels of ``paths``, memory-mapped read-only from ``path``;
    decoded and written first when the file is absent (once, whoever else asks meanwhile).

    ``workers``: loader processes decoding while building. Files that cannot be decoded are
    one DataError naming every one of them, raised after all were tried, and leave no cache
    file behind. OSError when the
    cache folder cannot be written (the caller streams without the cache then).
    """
    if (pixels := _open(path, len(paths), size)) is not None:
        return pixels
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path.with_name(f".{path.name}.lock")):
        if (pixels := _open(path, len(paths), size)) is None:  # nobody built it meanwhile
            _build(path, paths, size, workers, decode)
            pixels = _open(path, len(paths), size)
    if pixels is None:
        raise OSError(f"the decoded cache '{path}' could not be read back after writing it")
    return pixels


def cached_part(spec: DataSpec, part: str, paths: list[Path], notes: list[str]) -> Path | None:
    """The decoded cache file of ``part`` of ``spec``'s folder, built first if needed; None
    (and a note saying why in ``notes``) when it cannot be written: the caller decodes then."""
    try:
        where = cache_file(spec, part)
        if where is not None:
            decoded_pixels(where, paths, spec.image_size, spec.workers)
        return where
    except OSError as err:
        notes.append(f"data.cache: the decoded cache could not be written ({err}); images are "
                     "decoded as they are read instead. Free disk space or set data.cache_dir.")
        return None
