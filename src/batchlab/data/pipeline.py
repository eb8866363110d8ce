"""Which pipeline loads a data spec: ``data.pipeline = "auto" | "memory" | "stream"``.

* ``memory``: ``load_dataset`` decodes everything into float32 tensors (the fast path).
* ``stream``: ``open_stream`` keeps the pixels on disk and decodes per sample (image folders).
* ``auto``: memory, unless the data is an image folder whose decoded float32 tensors would
  take more than AUTO_MEMORY_SHARE of the memory available now; then stream. Loading holds
  about twice the decoded size for a moment (uint8 -> float32, then the split's copy), and a
  sweep's local pool holds one copy per worker process, so "fits comfortably" leaves room
  for both. The choice is added to the data's notes, which a sweep prints.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

import torch

from batchlab.data.dataset import Dataset, load_dataset
from batchlab.data.imagefolder import folder_files
from batchlab.data.stream import StreamData, open_stream
from batchlab.spec import DataSpec

AUTO_MEMORY_SHARE = 0.25
LoadedData = Dataset | StreamData


def mem_available() -> int | None:
    """Linux's MemAvailable from /proc/meminfo in bytes (None where there is no /proc)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def available_memory() -> int:
    """Bytes of memory available now (Linux MemAvailable; else free physical pages)."""
    if (available := mem_available()) is not None:
        return available
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 62  # unknown: assume plenty, i.e. today's memory path


def decoded_bytes(spec: DataSpec) -> int:
    """Bytes the image folder's parts this spec reads take as float32 (3, S, S) tensors."""
    files = folder_files(spec, spec.validation == "test")
    images = len(files.train[0]) + (len(files.test[0]) if files.test is not None else 0)
    return images * 3 * spec.image_size**2 * 4


def _bytes(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**29 else f"{n / 2**20:.1f} MiB"


def choose_pipeline(spec: DataSpec, available: int | None = None) -> tuple[str, str | None]:
    """("memory" | "stream", the note saying why auto chose it, or None when not auto).

    ``available``: the memory budget in bytes (default ``available_memory()``; tests pass a
    small one). Only image folders stream; every other format is read into memory.
    """
    if spec.pipeline != "auto":
        return spec.pipeline, None
    if spec.name != "image_folder":
        return "memory", None
    need = decoded_bytes(spec)
    budget = available_memory() if available is None else available
    size = (f"the decoded set takes {_bytes(need)} as float32, "
            f"{'within' if need <= AUTO_MEMORY_SHARE * budget else 'more than'} "
            f"{AUTO_MEMORY_SHARE:.0%} of the {_bytes(budget)} available")
    if need <= AUTO_MEMORY_SHARE * budget:
        return "memory", f"data.pipeline = 'auto' chose 'memory': {size}."
    return "stream", (f"data.pipeline = 'auto' chose 'stream' (decoding per sample with "
                      f"{spec.workers} loader processes): {size}.")


def load_data(spec: DataSpec, load_memory: Callable[[DataSpec], Dataset] = load_dataset,
              available: int | None = None) -> LoadedData:
    """The data of ``spec`` through the pipeline ``choose_pipeline`` picks: ``load_memory``'s
    tensors or a ``StreamData``; auto's choice is appended to the notes."""
    pipeline, note = choose_pipeline(spec, available)
    data: LoadedData = load_memory(spec) if pipeline == "memory" else open_stream(spec)
    return dataclasses.replace(data, notes=(*data.notes, note)) if note else data


def first_inputs(data: LoadedData, k: int) -> torch.Tensor:
    """The first ``k`` training inputs of either pipeline's data (for a forward check)."""
    return data.head(k) if isinstance(data, StreamData) else data.train_x[:k]
