"""The stream pipeline's fast path: whole batches read from the decoded cache (``data.cache``).

When both parts of a streamed image folder have a decoded cache (``batchlab.data.decoded``),
there is nothing left to decode, and the per-sample work of ``ImageSamples`` (scale,
normalise and augment one image at a time, then collate) costs more than the training step of
a small model. ``CachedBatches`` reads each batch's rows as one uint8 (B, S, S, 3) array from
the memory-mapped cache, copies it to the run's device (a quarter of the bytes of float32),
and there scales it to [0, 1], normalises and augments it as one batch, with the memory path's
``augment_batch``.

Its random draws are the memory path's (``MemoryBatches``): per epoch a permutation from the
run's ``order`` generator, then each batch's augmentation from the same generator. So every
example is augmented independently from the same distribution as before, the epoch checkpoints
(which save ``order``) resume it bit for bit, and with the same statistics it hands the loop
exactly the memory path's batches, while holding only the page cache's copy of the pixels.
Loader processes are not used for these batches (``data.workers`` still builds the cache):
a gather from the page cache is cheaper than handing a batch between processes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import torch

from batchlab.data.augment import augment_batch
from batchlab.data.epoch import epoch_bounds
from batchlab.data.stream import ImageSamples, StreamData
from batchlab.spec import DataSpec

Batch = tuple[torch.Tensor, torch.Tensor]  # (inputs, labels); batches.py re-exports it


def is_cached(data: StreamData) -> bool:
    """Whether every part ``data`` reads has a decoded cache file (one that could not be
    written leaves the samples decoding per image, and the stream's loader in charge)."""
    return data.train.part.cache is not None and data.val.part.cache is not None


class _CachedPart:
    """One ``ImageSamples`` read in batches from its cache file, finished on ``device``."""

    def __init__(self, samples: ImageSamples, device: torch.device) -> None:
        assert samples.part.cache is not None
        # read-only and memory-mapped: every run and process shares the page cache's copy
        self.pixels = np.load(samples.part.cache, mmap_mode="r")
        self.rows = samples.rows.numpy()
        self.labels = samples.labels.to(device)
        self.device = device
        self.mean = samples.mean.view(1, -1, 1, 1).to(device)
        self.std = samples.std.view(1, -1, 1, 1).to(device)

    def batch(self, idx: torch.Tensor) -> Batch:
        """Samples ``idx`` (positions in this part's rows) as (float32 (B, 3, S, S), labels)."""
        host = torch.from_numpy(np.take(self.pixels, self.rows[idx.numpy()], axis=0))
        if self.device.type == "cuda":
            host = host.pin_memory()  # so the copy below is asynchronous
        x = host.to(self.device, non_blocking=True)
        # NHWC -> contiguous NCHW while still uint8 (a quarter of the bytes moved); contiguous
        # so the model sees the same memory format as the memory path's tensors
        x = x.permute(0, 3, 1, 2).contiguous().to(torch.float32).div_(255.0)  # as images_tensor
        return (x - self.mean) / self.std, self.labels[idx.to(self.device)]

    def in_order(self, positions: list[int], size: int) -> Iterator[Batch]:
        for i in range(0, len(positions), size):
            yield self.batch(torch.tensor(positions[i : i + size], dtype=torch.int64))


class CachedBatches:
    """Batches of a cached ``StreamData`` (see the module docstring); a ``BatchSource``."""

    kind = "stream"

    def __init__(self, data: StreamData, spec: DataSpec, batch_size: int, device: torch.device,
                 eval_rows: torch.Tensor, min_batch: int = 1) -> None:
        self.spec, self.batch_size, self.min_batch = spec, batch_size, min_batch
        self._train, self._val = _CachedPart(data.train, device), _CachedPart(data.val, device)
        self.n_train, self.n_val = len(data.train), len(data.val)
        self.eval_rows = eval_rows.tolist()

    def epoch(self, order: torch.Generator, limit: int) -> Iterator[Batch]:
        # the memory path's draws, in its order: the permutation, then each batch's augmentation
        perm = torch.randperm(self.n_train, generator=order)
        size, augment = self.batch_size, self.spec.augment
        for a, b in epoch_bounds(self.n_train, size, limit, self.min_batch):
            xb, yb = self._train.batch(perm[a:b])
            if augment:
                xb = augment_batch(xb, augment, self.spec.crop_padding, order)
            yield xb, yb

    def val_batches(self, size: int) -> Iterable[Batch]:
        return self._val.in_order(list(range(self.n_val)), size)

    def train_eval_batches(self, size: int) -> Iterable[Batch]:
        return self._train.in_order(self.eval_rows, size)
