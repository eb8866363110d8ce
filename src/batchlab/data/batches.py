"""Batch sources: the one interface the training loop gets batches through, from either pipeline.

``batch_source(data, ...)`` wraps what ``pipeline.load_data`` returned:

* ``MemoryBatches`` (a ``Dataset``): the tensors on the device, each epoch a random
  permutation sliced into batches and augmented per batch. The rows of up to
  ``GATHER_BYTES`` worth of batches are gathered in one copy (the batches are exactly those
  of gathering each one, ``x[perm[i : i + batch]]``, with two tensor copies per chunk
  instead of two per step).
* ``StreamBatches`` (a ``StreamData``): a DataLoader over the per-sample dataset with
  ``data.workers`` processes, pinned memory on CUDA. Each epoch draws the permutation *and*
  one seed per sample from the run's generator, and the sampler hands (index, seed) pairs to
  the loader, so the same run seed gives the same batches with any number of workers.
* ``CachedBatches`` (a ``StreamData`` whose parts have a decoded cache, ``data.cache``): whole
  uint8 batches read from the memory-mapped cache and augmented as batches on the device, with
  the memory path's draws (``batchlab.data.cached``).

Both draw everything from the run's ``order`` generator, whose state the epoch checkpoints
save, so a resumed run continues with the batches it would have seen.

An epoch is cut into batches by ``data.epoch.epoch_bounds``, the same for every source: consecutive
batches of ``batch_size`` with a partial last one. ``min_batch`` (the loop passes 2 per process
when the model has BatchNorm layers that train) is the fewest examples a batch may hold: a last
batch smaller than that (a single example, which training-mode BatchNorm refuses) takes what it
lacks from the batch before it. The epoch keeps its ``ceil(n_train / batch_size)`` steps and
every example, so ``train.schedules.steps_per_epoch``, the run's length, its schedule and a
resume agree with it as before; with ``min_batch = 1`` (any model without BatchNorm) the batches
are exactly the plain ones.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

import torch
from torch.utils.data import DataLoader, Sampler

from batchlab.data.augment import augment_batch
from batchlab.data.cached import Batch, CachedBatches, is_cached
from batchlab.data.dataset import Dataset
from batchlab.data.epoch import epoch_bounds
from batchlab.data.loader import loader_options, unwrap, usable_workers
from batchlab.data.stream import NO_AUGMENT, StreamData
from batchlab.spec import DataSpec

SEED_RANGE = 2**62
GATHER_BYTES = 32 << 20  # the memory path copies at most this many bytes of rows at once


class BatchSource(Protocol):
    """Training batches per epoch, and evaluation batches of the validation set and of a fixed
    training subset (unaugmented), all on the run's device."""

    kind: str  # "memory" or "stream"
    n_train: int
    n_val: int

    def epoch(self, order: torch.Generator, limit: int) -> Iterator[Batch]:
        """One epoch's batches in random order (at most ``limit`` of them), augmented."""
        ...

    def val_batches(self, size: int) -> Iterable[Batch]: ...

    def train_eval_batches(self, size: int) -> Iterable[Batch]: ...


def _chunks(x: torch.Tensor, y: torch.Tensor, size: int) -> Iterator[Batch]:
    for i in range(0, len(y), size):
        yield x[i : i + size], y[i : i + size]


def on_device(batches: Iterable[Batch], device: torch.device) -> Iterator[Batch]:
    """Host batches copied to ``device`` as they are drawn (asynchronously from pinned memory)."""
    for xb, yb in batches:
        yield xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)


class MemoryBatches:
    """Batches sliced from in-memory tensors (see the module docstring)."""

    kind = "memory"

    def __init__(self, data: Dataset, spec: DataSpec, batch_size: int, device: torch.device,
                 eval_rows: torch.Tensor, min_batch: int = 1) -> None:
        self.spec, self.batch_size, self.min_batch = spec, batch_size, min_batch
        self.train_x, self.train_y = data.train_x.to(device), data.train_y.to(device)
        self.val_x, self.val_y = data.val_x.to(device), data.val_y.to(device)
        self.sub_x, self.sub_y = self.train_x[eval_rows.to(device)], self.train_y[eval_rows.to(device)]
        self.n_train, self.n_val = len(self.train_y), len(self.val_y)

    def epoch(self, order: torch.Generator, limit: int) -> Iterator[Batch]:
        perm = torch.randperm(self.n_train, generator=order).to(self.train_x.device)
        x, y, size, augment = self.train_x, self.train_y, self.batch_size, self.spec.augment
        bounds = epoch_bounds(self.n_train, size, limit, self.min_batch)
        # the rows of many batches are gathered in one copy and the batches are slices of it:
        # the same numbers as gathering each batch, at a third of the per-step cost on small
        # models, and never more than GATHER_BYTES of copies at a time
        row_bytes = max(1, x[:1].nelement() * x.element_size())
        per_chunk = max(1, GATHER_BYTES // (row_bytes * size))
        while group := list(itertools.islice(bounds, per_chunk)):
            base = group[0][0]
            rows = perm[base : group[-1][1]]
            xs, ys = x.index_select(0, rows), y.index_select(0, rows)
            for a, b in group:
                xb, yb = xs[a - base : b - base], ys[a - base : b - base]
                if augment:
                    xb = augment_batch(xb, augment, self.spec.crop_padding, order)
                yield xb, yb

    def val_batches(self, size: int) -> Iterable[Batch]:
        return _chunks(self.val_x, self.val_y, size)

    def train_eval_batches(self, size: int) -> Iterable[Batch]:
        return _chunks(self.sub_x, self.sub_y, size)


class _Keys(Sampler[list[tuple[int, int]]]):
    """A batch sampler whose batches the owner sets before each pass (the loader iterates it in
    the training process, so persistent workers see each pass's keys)."""

    def __init__(self) -> None:
        self.batches: list[list[tuple[int, int]]] = []

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class StreamBatches:
    """Batches decoded per sample by a DataLoader (see the module docstring)."""

    kind = "stream"

    def __init__(self, data: StreamData, spec: DataSpec, batch_size: int, device: torch.device,
                 eval_rows: torch.Tensor, seed: int, min_batch: int = 1) -> None:
        self.batch_size, self.device, self.min_batch = batch_size, device, min_batch
        self.n_train, self.n_val = len(data.train), len(data.val)
        self.workers = usable_workers(spec.workers)
        self.eval_rows = eval_rows.tolist()
        self._train_keys, self._val_keys, self._sub_keys = _Keys(), _Keys(), _Keys()
        options = loader_options(spec.workers, device, seed)
        self._train = DataLoader(data.train, batch_sampler=self._train_keys, **options)
        # Evaluation has loaders of its own: it runs mid-epoch, while the training loader's
        # (persistent) iterator is suspended, and a second pass over it would reset it.
        self._val = DataLoader(data.val, batch_sampler=self._val_keys, **options)
        self._sub = DataLoader(data.train, batch_sampler=self._sub_keys, **options)

    def _to_device(self, batches: Iterable[Batch]) -> Iterator[Batch]:
        return on_device(unwrap(batches), self.device)

    def epoch(self, order: torch.Generator, limit: int) -> Iterator[Batch]:
        perm = torch.randperm(self.n_train, generator=order).tolist()
        seeds = torch.randint(0, SEED_RANGE, (self.n_train,), generator=order).tolist()
        keys = list(zip(perm, seeds, strict=True))
        cut = epoch_bounds(self.n_train, self.batch_size, limit, self.min_batch)
        self._train_keys.batches = [keys[a:b] for a, b in cut]
        return self._to_device(self._train)

    def _eval(self, loader: DataLoader, keys: _Keys, rows: list[int], size: int) -> Iterator[Batch]:
        keys.batches = [[(i, NO_AUGMENT) for i in rows[j : j + size]]
                        for j in range(0, len(rows), size)]
        return self._to_device(loader)

    def val_batches(self, size: int) -> Iterable[Batch]:
        return self._eval(self._val, self._val_keys, list(range(self.n_val)), size)

    def train_eval_batches(self, size: int) -> Iterable[Batch]:
        return self._eval(self._sub, self._sub_keys, self.eval_rows, size)


def batch_source(data: Dataset | StreamData, spec: DataSpec, batch_size: int,
                 device: torch.device, seed: int,
                 eval_size: Callable[[int, int], int], min_batch: int = 1) -> BatchSource:
    """The batch source of loaded ``data``. ``eval_size(n_train, n_val)``: how many training
    examples the fixed train-accuracy subset has (drawn with seed 0, as the loop always did).
    ``min_batch``: the fewest examples a training batch may hold (see :func:`epoch_bounds`)."""
    n_train, n_val = len(data.train_y), len(data.val_y)
    rows = torch.randperm(n_train, generator=torch.Generator().manual_seed(0))[
        : eval_size(n_train, n_val)]
    if isinstance(data, StreamData) and is_cached(data):
        return CachedBatches(data, spec, batch_size, device, rows, min_batch)
    if isinstance(data, StreamData):
        return StreamBatches(data, spec, batch_size, device, rows, seed, min_batch)
    return MemoryBatches(data, spec, batch_size, device, rows, min_batch)
