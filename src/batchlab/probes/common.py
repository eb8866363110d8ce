"""What every probe needs, built fresh from a run config, and the rules that keep probes clean.

Contract shared by all probes:

- a probe trains its *own* model and optimizer (``fresh_setup``); a model passed in by the
  caller is deep-copied first (``private_copy``), so the caller's module (parameters, buffers,
  e.g. BatchNorm running statistics) is never touched and nothing needs restoring;
- torch's global RNG state is the same after a probe as before it (``isolated_rng``);
- bad input raises :class:`ProbeError` (a ``BatchlabError``: the CLI prints it and exits 2)
  with a message that says what to try;
- data comes through ``data.pipeline`` as the trainer's does (``load_probe_data``): in-memory
  tensors, or an image folder streamed per sample (``probes.streamed``), and every probe
  draws its batches through ``ProbeSetup.batches`` / ``val_batches``, which serve both, so no
  probe ever decodes a streamed folder into memory.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

import torch
from torch import nn

from batchlab.data import augment_batch, pipeline
from batchlab.data.batches import Batch
from batchlab.data.pipeline import LoadedData
from batchlab.data.stream import StreamData
from batchlab.errors import BatchlabError
from batchlab.probes.streamed import stream_eval_batches, stream_train_batches
from batchlab.spec import RunConfig
from batchlab.train.device import resolve_device
from batchlab.train.inputs import LossFn as LossFn  # re-exported: the probes' loss type
from batchlab.train.inputs import OptimizerBuilder, RunInputs
from batchlab.train.loop import EVAL_BATCH
from batchlab.train.optim import build_optimizer
from batchlab.train.precision import (
    Precision,
    as_channels_last,
    check_channels_last,
    make_precision,
    to_channels_last,
)


class ProbeError(BatchlabError):
    """A probe cannot run or cannot conclude on this input; the message says what to try."""


def probe_inputs(inputs: RunInputs | None) -> RunInputs:
    """The caller's builders, or the spec's with the data through ``data.pipeline`` (as the
    trainer loads it: a streamed image folder stays on disk)."""
    return inputs or RunInputs(load_data=pipeline.load_data)


def load_probe_data(config: RunConfig, inputs: RunInputs | None = None) -> LoadedData:
    """``config``'s data as a probe gets it (see :func:`probe_inputs`)."""
    return probe_inputs(inputs).load_data(config.data)


@dataclass
class ProbeSetup:
    """A fresh model, its optimizer factory and the training data, ready for a probe.

    ``data``: in-memory tensors (``Dataset``) or a streamed image folder (``StreamData``).
    ``train_y``: the training labels on ``device``; ``train_x``: the training inputs on
    ``device``, None for streamed data (its pixels stay on disk). ``make_optimizer(lr)``
    builds the config's optimizer (momentum, Nesterov, weight decay) over ``model``'s
    parameters, or the caller's (``inputs.make_optimizer``). ``batches(size, generator)``
    draws training batches from either kind of data, augmented exactly as the training loop
    does (in channels_last when ``train.channels_last``); ``val_batches()`` the validation
    set. ``precision``: the run's autocast and fp16 grad scaler (``train.precision``), for the
    probes' steps.
    """

    config: RunConfig
    data: LoadedData
    device: torch.device
    model: nn.Module
    loss_fn: LossFn
    seed: int
    train_x: torch.Tensor | None
    train_y: torch.Tensor
    optimizer_factory: OptimizerBuilder = build_optimizer
    precision: Precision = field(default_factory=lambda: Precision("fp32", "cpu"))

    @property
    def n_train(self) -> int:
        return len(self.train_y)

    def make_optimizer(self, lr: float) -> torch.optim.Optimizer:
        return self.optimizer_factory(self.config.train, self.model.parameters(), lr)

    def batch(self, idx: torch.Tensor, generator: torch.Generator) -> Batch:
        """The in-memory examples ``idx``, augmented with ``generator`` (streamed data is drawn
        only through :meth:`batches`: its loader decodes ahead)."""
        if self.train_x is None:
            raise TypeError("ProbeSetup.batch needs in-memory data; draw streamed data with "
                            "ProbeSetup.batches")
        idx = idx.to(self.device)
        xb, yb = self.train_x[idx], self.train_y[idx]
        if augment := self.config.data.augment:
            xb = augment_batch(xb, augment, self.config.data.crop_padding, generator)
        if self.config.train.channels_last:
            xb = as_channels_last(xb)
        return xb, yb

    def batches(self, batch_size: int, generator: torch.Generator,
                distinct: int | None = None) -> Iterator[Batch]:
        """Endless training batches of exactly ``batch_size``, in random order from
        ``generator`` (each pass a fresh permutation; the partial last batch dropped), and
        augmented with it. ProbeError when the batch is larger than the training set.

        In memory: ``full_batches`` sliced by :meth:`batch`. Streamed: the trainer's
        DataLoader path (``probes.streamed``) with ``data.workers`` loader processes, the
        augmentation seeds drawn from ``generator``. ``distinct``: the caller needs only that
        many different batches (a memory or speed measurement); a streamed source decodes
        just those and cycles them, while in memory every batch stays a fresh slice (which
        costs nothing and keeps the numbers as they always were).
        """
        check_batch_fits(self.n_train, batch_size)
        data = self.data
        if not isinstance(data, StreamData):
            return (self.batch(idx, generator)
                    for idx in full_batches(self.n_train, batch_size, generator))
        streamed = stream_train_batches(data.train, batch_size, generator,
                                        workers=self.config.data.workers, device=self.device,
                                        seed=self.seed, distinct=distinct)
        if not self.config.train.channels_last:
            return streamed
        return ((as_channels_last(xb), yb) for xb, yb in streamed)

    def val_batches(self, size: int = EVAL_BATCH) -> Iterable[Batch]:
        """The validation set in order, unaugmented, in batches of ``size`` on ``device``
        (for ``train.loop.evaluate_batches``; the same chunks as ``train.loop.evaluate``)."""
        data = self.data
        if isinstance(data, StreamData):
            return stream_eval_batches(data.val, size, workers=self.config.data.workers,
                                       device=self.device, seed=self.seed)
        x, y = data.val_x.to(self.device), data.val_y.to(self.device)
        return ((x[i : i + size], y[i : i + size]) for i in range(0, len(y), size))


def isolated_rng() -> AbstractContextManager[object]:
    """A context that restores torch's global RNG state (CPU and every CUDA device) on exit.

    Probes seed torch (model init, dropout) inside it, so the caller's random stream is the
    same after the probe as before it.
    """
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    return torch.random.fork_rng(devices=devices)


def private_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` (parameters, buffers, submodules) that shares no storage with it.

    The probe trains the copy; the caller's module is never touched, so there is nothing to
    restore and no way to restore it wrongly.
    """
    return copy.deepcopy(model)


def fresh_setup(
    config: RunConfig,
    data: LoadedData | None = None,
    *,
    seed: int | None = None,
    model: nn.Module | None = None,
    inputs: RunInputs | None = None,
) -> ProbeSetup:
    """Build data, device, a fresh model and the loss for a probe of ``config``.

    ``data``: ``config.data`` already loaded (saves loading it again; default
    :func:`load_probe_data`: a streamed image folder stays streamed).
    ``seed`` (default ``config.train.seed``) seeds model initialisation and dropout through
    ``torch.manual_seed``, so call this inside :func:`isolated_rng`. ``model``: use a
    private copy of this module instead of building ``config.model``. ``inputs``: where data,
    model, loss and optimizer come from (the Python API's objects; default: the config's).
    The model is in channels_last under ``train.channels_last`` (SpecError on non-image data),
    and ``precision`` is ``train.precision``'s, as in the trainer.
    """
    inputs = probe_inputs(inputs)
    data = data if data is not None else inputs.load_data(config.data)
    device = resolve_device(config.train.device)
    seed = config.train.seed if seed is None else seed
    torch.manual_seed(seed)
    net = private_copy(model) if model is not None else inputs.build_model(config.model, data)
    net = net.to(device)
    if config.train.channels_last:
        check_channels_last(data.input_shape)
        net = to_channels_last(net)
    train_x = None if isinstance(data, StreamData) else data.train_x.to(device)
    return ProbeSetup(config, data, device, net, inputs.loss_fn, seed, train_x,
                      data.train_y.to(device), inputs.make_optimizer,
                      make_precision(config.train.precision, device))


def check_batch_fits(n_train: int, batch_size: int) -> None:
    """ProbeError when a batch of ``batch_size`` cannot be drawn from ``n_train`` examples."""
    if batch_size > n_train:
        raise ProbeError(
            f"batch size {batch_size} is larger than the {n_train} training examples; pick a "
            f"batch size of at most {n_train} or use more data (data.limit / data.size)."
        )


def full_batches(n_train: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Endless index batches of exactly ``batch_size``: a fresh permutation per pass.

    The partial batch at the end of a pass is dropped: a probe's statistics (loss noise,
    gradient noise) depend on the batch size, so every step uses the same one.
    """
    check_batch_fits(n_train, batch_size)
    while True:
        perm = torch.randperm(n_train, generator=generator)
        for i in range(0, n_train - batch_size + 1, batch_size):
            yield perm[i : i + batch_size]
