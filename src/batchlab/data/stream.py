"""The stream pipeline's data: an image folder decoded per sample, never held whole in memory.

``open_stream(spec)`` lists the folder (the same layout rules and errors as the memory path,
``batchlab.data.imagefolder``), applies the same split, ``limit`` and per-channel normalisation
as ``load_dataset`` and returns a ``StreamData``: labels in memory, pixels on disk. Its parts
are map-style ``ImageSamples`` a DataLoader reads in any number of processes:

* a sample is decoded and resized by ``read_image`` (the memory path's decoder), or read from
  the decoded cache (``data.cache``, ``batchlab.data.decoded``), then scaled to [0, 1],
  normalised and, for training, augmented by ``augment_batch`` (the memory path's code) with
  a generator seeded by the sample's own seed. The seed travels with the index, so a batch
  depends on the run's seed alone, not on which loader process made it or how many there are.
* when both parts have a decoded cache, the trainer reads whole batches from it instead
  (``batchlab.data.cached``); the samples still serve the probes' loaders.
* normalisation statistics are per channel like the memory path's, but from at most
  STATS_SAMPLE training images (seeded), so opening a big folder costs a bounded time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset

from batchlab.data.augment import augment_batch
from batchlab.data.decoded import cached_part
from batchlab.data.fileio import images_tensor
from batchlab.data.imagefolder import folder_files
from batchlab.data.images import read_image
from batchlab.data.loader import Failed, collate, guarded, unwrap, usable_workers, worker_options
from batchlab.data.split import limit_indices, split_indices
from batchlab.errors import DataError
from batchlab.spec import DataSpec

STATS_SAMPLE = 1000  # training images the normalisation statistics are computed from, at most
STATS_BATCH = 100
NO_AUGMENT = -1  # the seed of a sample read for evaluation


@dataclass(frozen=True)
class Part:
    """One part of the folder (train or test) as listed: every file, its label, its cache."""

    paths: list[Path]
    labels: torch.Tensor  # int64 (N,)
    cache: Path | None = None  # the decoded cache file, when data.cache and it could be built


class ImageSamples(TorchDataset):
    """Rows ``rows`` of a Part as (image (3, S, S) float32, label) samples.

    ``self[i]`` is the i-th row unaugmented; ``self[i, seed]`` augments it with ``ops`` drawn
    from a generator seeded by ``seed`` (NO_AUGMENT: none). A file that cannot be decoded
    gives a ``Failed`` sample carrying the memory path's DataError message (see
    ``batchlab.data.loader``). The decoded cache is opened lazily in each process, read-only
    and memory-mapped, and never pickled: loader processes share its pages.
    """

    def __init__(self, part: Part, rows: torch.Tensor, size: int, mean: torch.Tensor,
                 std: torch.Tensor, ops: tuple[str, ...] = (), crop_padding: int = 0) -> None:
        self.part, self.rows, self.size = part, rows, size
        self.mean, self.std = mean.view(-1, 1, 1), std.view(-1, 1, 1)
        self.ops, self.crop_padding = ops, crop_padding
        self._pixels: np.ndarray | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_pixels": None}  # reopened by each process, never copied

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def labels(self) -> torch.Tensor:
        return self.part.labels[self.rows]

    def with_stats(self, mean: torch.Tensor, std: torch.Tensor) -> ImageSamples:
        return ImageSamples(self.part, self.rows, self.size, mean, std, self.ops, self.crop_padding)

    def pixels(self, i: int) -> np.ndarray:
        """(S, S, 3) uint8 pixels of row i: from the cache when there is one, else decoded."""
        row = int(self.rows[i])
        if self.part.cache is None:
            return read_image(self.part.paths[row], self.size)
        if self._pixels is None:
            self._pixels = np.load(self.part.cache, mmap_mode="r")
        return self._pixels[row]

    def _sample(self, i: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = images_tensor(self.pixels(i).transpose(2, 0, 1)[None])  # as the memory path scales
        x = (x - self.mean) / self.std
        if self.ops and seed != NO_AUGMENT:
            x = augment_batch(x, self.ops, self.crop_padding, torch.Generator().manual_seed(seed))
        return x[0], self.part.labels[self.rows[i]]

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor] | Failed:
        i, seed = key if isinstance(key, tuple) else (key, NO_AUGMENT)
        return guarded(lambda: self._sample(int(i), int(seed)))


@dataclass(frozen=True)
class StreamData:
    """An image folder opened for streaming: the parts, and what ``Dataset`` says about its
    data (shape, classes, description, notes, labels) without the pixels."""

    train: ImageSamples
    val: ImageSamples
    input_shape: tuple[int, ...]
    num_classes: int
    description: str
    notes: tuple[str, ...] = ()

    @property
    def train_y(self) -> torch.Tensor:
        return self.train.labels

    @property
    def val_y(self) -> torch.Tensor:
        return self.val.labels

    def head(self, k: int) -> torch.Tensor:
        """The first ``k`` training inputs, unaugmented (a forward check needs a few)."""
        return torch.stack([sample[0] for sample in unwrap(
            self.train[i] for i in range(min(k, len(self.train))))])


def channel_stats(samples: ImageSamples, seed: int, workers: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std (correction 0, as ``split.normalize``) of at most STATS_SAMPLE
    seeded training images in [0, 1]; a constant channel gets std 1 (only centred)."""
    n = len(samples)
    pick = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:STATS_SAMPLE]
    subset = ImageSamples(samples.part, samples.rows[pick.sort().values], samples.size,
                          torch.zeros(3), torch.ones(3))
    total = torch.zeros(3, dtype=torch.float64)
    squares = torch.zeros(3, dtype=torch.float64)
    count = 0
    loader = DataLoader(subset, batch_size=STATS_BATCH, collate_fn=collate,
                        **worker_options(workers))
    for x, _ in unwrap(loader, every=True):  # every bad image of the sample at once
        x = x.to(torch.float64)
        total += x.sum(dim=(0, 2, 3))
        squares += x.pow(2).sum(dim=(0, 2, 3))
        count += x.shape[0] * x.shape[2] * x.shape[3]
    mean = total / count
    std = (squares / count - mean.pow(2)).clamp_min(0).sqrt()
    std = torch.where(std > 1e-8, std, torch.ones_like(std))
    return mean.to(torch.float32), std.to(torch.float32)


def _part(spec: DataSpec, files: tuple[list[Path], list[int]], name: str,
          notes: list[str]) -> Part:
    """A listed part, with its decoded cache built or opened when ``data.cache``."""
    paths, labels = files
    cache = cached_part(spec, name, paths, notes) if spec.cache else None
    return Part(paths, torch.tensor(labels, dtype=torch.int64), cache)


def open_stream(spec: DataSpec) -> StreamData:
    """Open ``spec``'s image folder for streaming (see the module docstring). The split,
    ``limit`` and normalisation follow ``load_dataset`` exactly, except that the statistics come
    from a bounded sample. DataError for a folder the memory path would refuse too, and for
    a data set that is not an image folder."""
    if spec.name != "image_folder":
        raise DataError(
            f"data.pipeline = 'stream' reads image folders only; data.name = {spec.name!r} is "
            "read into memory: use data.pipeline = 'memory' (or 'auto')."
        )
    want_test = spec.validation == "test"
    files = folder_files(spec, want_test)
    notes = files.notes()
    if spec.workers and not usable_workers(spec.workers):
        notes.append(
            f"data.workers = {spec.workers} is not used here: this process is daemonic (a "
            "multiprocessing.Pool worker, say) and Python forbids daemonic processes to start "
            "loader processes, so images are decoded in the training process, one at a time. "
            "Call batchlab from a non-daemonic process (the CLI, a plain "
            "multiprocessing.Process) to decode in parallel.")
    train_part = _part(spec, files.train, "train", notes)
    if files.test is not None:
        train_rows = torch.arange(len(train_part.paths))
        val_part = _part(spec, files.test, "test", notes)
        val_rows = torch.arange(len(val_part.paths))
    else:
        train_rows, val_rows = split_indices(len(train_part.paths), spec.val_fraction, spec.split_seed)
        val_part = train_part
    keep = limit_indices(len(train_rows), spec.limit, spec.split_seed)
    if keep is not None:
        train_rows = train_rows[keep]
    size = spec.image_size
    mean, std = torch.zeros(3), torch.ones(3)
    train = ImageSamples(train_part, train_rows, size, mean, std, tuple(spec.augment),
                         spec.crop_padding)
    if spec.normalize:
        mean, std = channel_stats(train, spec.split_seed + 2, spec.workers)
        train = train.with_stats(mean, std)
    val = ImageSamples(val_part, val_rows, size, mean, std)
    cached = ", decoded cache" if train_part.cache is not None else ""
    val_name = "test" if want_test else "validation"
    description = (f"image_folder (streamed{cached}): {len(train_rows)} train / {len(val_rows)} "
                   f"{val_name}, 3x{size}x{size}, {len(files.classes)} classes")
    return StreamData(train, val, (3, size, size), len(files.classes), description, tuple(notes))
