"""Probe batches from streamed data (``data.pipeline = "stream"``): decoded per sample by a
DataLoader, never the whole set.

A probe draws "endless full batches of size B with generator g" (``ProbeSetup.batches``). On
in-memory tensors that is a permutation sliced into batches; here it is the same thing through
the trainer's streaming path (``batchlab.data.stream``): a DataLoader over the per-sample
dataset (the decoded cache when ``data.cache`` built one) with ``data.workers`` loader
processes, whose batch sampler draws each pass's permutation *and* one augmentation seed per
sample from ``g``, exactly as ``StreamBatches.epoch`` does. Only the sampler, in this process,
reads ``g``, so the batches depend on the seed alone, not on the number of loader processes or
on how far they prefetch.

Memory is bounded by the batches in flight: the one being trained on and the loader's prefetch
(``prefetch_factor`` per loader process). A probe that needs only a few batches (max-batch,
throughput) asks for ``distinct`` ones: the sampler ends after them, so just those are decoded,
and they are cycled for as many steps as the probe takes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import cycle
from typing import Any

import torch
from torch.utils.data import DataLoader, Sampler

from batchlab.data.batches import SEED_RANGE, Batch, on_device
from batchlab.data.loader import loader_options, unwrap
from batchlab.data.stream import NO_AUGMENT, ImageSamples


class FullBatchKeys(Sampler[list[tuple[int, int]]]):
    """(index, seed) batches of exactly ``batch_size``: per pass a permutation of ``n`` and one
    seed per sample from ``generator``; the partial last batch of a pass is dropped (as
    ``probes.common.full_batches``). Endless, or ``limit`` batches. Iterated in the probe's
    process by the DataLoader, so only it reads ``generator``."""

    def __init__(self, n: int, batch_size: int, generator: torch.Generator,
                 limit: int | None = None) -> None:
        self.n, self.batch_size, self.generator, self.limit = n, batch_size, generator, limit

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        made = 0
        while True:
            perm = torch.randperm(self.n, generator=self.generator).tolist()
            seeds = torch.randint(0, SEED_RANGE, (self.n,), generator=self.generator).tolist()
            for i in range(0, self.n - self.batch_size + 1, self.batch_size):
                if self.limit is not None and made >= self.limit:
                    return
                made += 1
                yield list(zip(perm[i : i + self.batch_size], seeds[i : i + self.batch_size],
                               strict=True))


def _loader(samples: ImageSamples, keys: Iterable[list[tuple[int, int]]], workers: int,
            device: torch.device, seed: int) -> DataLoader[Any]:
    # Not persistent: a probe's loader serves one short pass; its processes end with it.
    options = {**loader_options(workers, device, seed), "persistent_workers": False}
    return DataLoader(samples, batch_sampler=keys, **options)  # type: ignore[arg-type]


def stream_train_batches(samples: ImageSamples, batch_size: int, generator: torch.Generator, *,
                         workers: int, device: torch.device, seed: int,
                         distinct: int | None = None) -> Iterator[Batch]:
    """Endless training batches of ``samples`` (augmented per sample with the seeds drawn from
    ``generator``) on ``device`` (see the module doc). ``distinct``: decode only that many
    batches, here and now (so that a measurement times the step, never the decoding), and
    cycle them; each is still copied to the device per step, as the trainer copies every
    streamed batch. A file that cannot be decoded raises the memory path's DataError."""
    keys = FullBatchKeys(len(samples), batch_size, generator, distinct)
    host = unwrap(_loader(samples, keys, workers, device, seed))
    return on_device(host if distinct is None else cycle(list(host)), device)


def stream_eval_batches(samples: ImageSamples, size: int, *, workers: int, device: torch.device,
                        seed: int) -> Iterator[Batch]:
    """Every sample of ``samples`` in order, unaugmented, in batches of ``size`` on ``device``."""
    n = len(samples)
    keys = [[(i, NO_AUGMENT) for i in range(j, min(j + size, n))] for j in range(0, n, size)]
    return on_device(unwrap(_loader(samples, keys, workers, device, seed)), device)
