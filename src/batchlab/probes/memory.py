"""One training step, and how much memory it needs at a batch size.

``train_step`` is the trainer's step (forward, ``F.cross_entropy``, ``zero_grad(set_to_none=True)``,
backward, optimizer step); ``max_batch`` and ``throughput`` both train through it, so what they
measure is what ``batchlab.train.loop`` runs.

**What "peak memory of a step" means** (``MemoryMeasure.bytes``):

- *CUDA* (``method = "cuda_max_allocated"``): ``torch.cuda.max_memory_allocated`` over one
  steady-state step (a first step creates the gradients and optimizer state; the peak is taken
  over the second). It counts every tensor allocated on the device at the step's worst moment:
  model, gradients, optimizer state, the training set (the trainer keeps it on the device),
  activations, kernel workspaces and temporaries. It does not count the caching allocator's
  reserved-but-unused blocks (fragmentation; ``detail["reserved_peak"]`` shows them) nor the
  CUDA context (a few hundred MiB outside the allocator).
- *CPU* (``method = "cpu_accounting"``): torch keeps no allocator statistics on the CPU, so the
  peak is *accounted* exactly and deterministically, as the tensors alive at the end of the
  forward pass of a steady-state step, the moment the trainer's loop holds the most
  long-lived tensors (it calls ``zero_grad`` only after the forward pass, so the previous
  step's gradients are still alive then). Each distinct storage is counted once (views and
  in-place results share storage):

  ``model`` (parameters and buffers) + ``grads`` (one per trainable parameter) +
  ``optimizer_state`` (momentum buffers, Adam moments, step counters) + ``batch`` (the
  step's inputs and labels) + ``activations`` (every tensor autograd saves for backward,
  seen through ``torch.autograd.graph.saved_tensors_hooks``, plus the loss).

  Not counted: intermediate tensors that die inside the forward pass without being saved
  (e.g. logits, after the loss is computed from them), activation gradients that live while
  one layer's backward runs, temporaries and scratch space inside kernels (oneDNN, BLAS),
  tensors a model stashes on itself, the training set (it is in host memory before the step and
  after it, whatever the batch size), and the allocator's fragmentation and caching. For the
  zoo models the accounted peak is exactly linear in the batch size, ``a + b * B``.
  As a cross-check ``detail["rss_growth"]`` gives how far the process's resident set rose
  above its size before the step, and ``detail["rss_peak"]`` the process's resident peak
  during the step (see :class:`batchlab.probes.host.RssWatch`). The accounting leaves out
  what the host still has to provide, so ``max_batch`` decides on the larger of the two
  (``batchlab.probes.host``); this measure itself stays the deterministic accounting.

``parse_size("4GiB")`` reads the human sizes the CLI accepts; ``is_oom`` recognises an
out-of-memory error precisely, so that every other error propagates unchanged.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from batchlab.probes.common import LossFn, ProbeError, ProbeSetup, isolated_rng, private_copy
from batchlab.probes.host import RssWatch, trim_heap
from batchlab.spec import RunConfig
from batchlab.train.device import resolve_device
from batchlab.train.precision import Precision
from batchlab.train.scaling import scaled_lr

Batch = tuple[torch.Tensor, torch.Tensor]

# --------------------------------------------------------------------------- sizes

_UNITS = {
    "": 1, "b": 1,
    "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
SIZE_FORMS = "plain bytes (1000000), or a number with KB/MB/GB/TB (powers of 1000) or KiB/MiB/GiB/TiB " \
             "(powers of 1024), e.g. 4GiB, 512MiB, 1.5GB"


def parse_size(text: str | int) -> int:
    """``"4GiB"`` -> 4294967296. Units are case-insensitive; KB = 1000, KiB = 1024.

    A bare number is bytes and must be whole; with a unit it may be fractional (``1.5GiB``,
    rounded down to a byte). Zero, negative sizes, bare letters like ``4G`` (GB or GiB?) and
    anything else raise ProbeError listing the accepted forms.
    """
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        match = _SIZE.match(str(text))
        unit = match.group(2).lower() if match else None
        if not match or unit not in _UNITS or (unit in ("", "b") and "." in match.group(1)):
            raise ProbeError(f"cannot read the memory size {text!r}; write {SIZE_FORMS}.")
        value = int(float(match.group(1)) * _UNITS[unit])
    if value <= 0:
        raise ProbeError(f"memory size {text!r} must be positive; write {SIZE_FORMS}.")
    return value


def format_size(n: float | None) -> str:
    """``1536`` -> ``"1.5 KiB"`` (binary units), for messages and plots."""
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


# --------------------------------------------------------------------------- out of memory

# Messages of torch's allocators when an allocation fails: CUDA's caching allocator, the CPU
# allocator on Linux/macOS ("can't allocate memory") and Windows ("not enough memory"), MPS.
_OOM_MESSAGES = ("CUDA out of memory", "DefaultCPUAllocator: can't allocate memory",
                 "DefaultCPUAllocator: not enough memory", "MPS backend out of memory")


def is_oom(err: BaseException) -> bool:
    """True only for an out-of-memory failure: ``torch.cuda.OutOfMemoryError``, ``MemoryError``,
    or a RuntimeError carrying one of torch's allocator messages. Anything else (a shape error,
    a ValueError from the model, KeyboardInterrupt) is not an OOM and must propagate."""
    if isinstance(err, (torch.cuda.OutOfMemoryError, MemoryError)):
        return True
    return isinstance(err, RuntimeError) and any(m in str(err) for m in _OOM_MESSAGES)


def release_memory(device: torch.device) -> None:
    """Return what a step left behind: collect reference cycles (an exception's traceback
    keeps the failing frame's tensors alive until collected), empty CUDA's cache, and hand
    the C allocator's free pages back to the OS (so the next trial's resident set starts
    from what is alive, not from the previous trial's leftovers)."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    else:
        trim_heap()


# --------------------------------------------------------------------------- the step


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, xb: torch.Tensor,
               yb: torch.Tensor, loss_fn: LossFn = F.cross_entropy,
               forward_context: AbstractContextManager[Any] | None = None,
               precision: Precision | None = None) -> torch.Tensor:
    """One optimizer update on (xb, yb), in the trainer's order; returns the (attached) loss.

    ``zero_grad`` comes after the forward pass, as in the trainer, so the previous step's
    gradients are alive during the forward pass. ``forward_context`` wraps the forward pass and
    the loss only (the memory accounting installs its saved-tensor hooks there). ``precision``:
    the run's ``train.precision`` (autocast around the forward pass, fp16's grad scaler), so
    memory and speed are measured as the run will train; None is fp32.
    """
    precision = precision or Precision("fp32", xb.device.type)
    with forward_context or nullcontext(), precision.autocast():
        loss = loss_fn(model(xb), yb)
    optimizer.zero_grad(set_to_none=True)
    precision.backward(loss)
    precision.step(optimizer)
    return loss


def measure_batches(device: torch.device) -> int:
    """Different batches a memory or speed measurement needs: those ``steady_step_memory``
    takes (1 on CPU, 2 on CUDA). Streamed data decodes just these and cycles them: a second
    host batch on CPU would be memory the accounting does not see."""
    return 2 if device.type == "cuda" else 1


def setup_batches(setup: ProbeSetup, batch_size: int, generator: torch.Generator) -> Iterator[Batch]:
    """Endless training batches of exactly ``batch_size`` from ``setup``'s data for measuring a
    step: a fresh random permutation per pass, sliced and augmented as the trainer does;
    streamed data decodes ``measure_batches`` batches and cycles them (the step's memory and
    time do not depend on which examples it sees). ProbeError if the batch is larger than the
    training set."""
    return setup.batches(batch_size, generator, distinct=measure_batches(setup.device))


def probe_device(config: RunConfig) -> torch.device:
    """The device a run of ``config`` trains on; ProbeError when it asks for a missing GPU."""
    try:
        return resolve_device(config.train.device)
    except RuntimeError as err:
        raise ProbeError(str(err)) from None


def setup_optimizer(setup: ProbeSetup, batch_size: int) -> torch.optim.Optimizer:
    """The config's optimizer at the LR the trainer would use at ``batch_size`` (scaling rule).

    ``train.lr = "auto"`` (not yet resolved by the LR range test) trains at 0.01 here: the
    memory and the time of a step do not depend on the LR's value, so these probes need not
    wait for it.
    """
    t = setup.config.train
    lr = 0.01 if t.lr == "auto" else t.numeric_lr()
    return setup.make_optimizer(scaled_lr(lr, batch_size, t.scale_lr, t.base_batch_size))


# --------------------------------------------------------------------------- measuring


@dataclass(frozen=True)
class MemoryMeasure:
    """Peak memory of one training step: ``bytes`` by ``method`` (see the module docstring),
    ``detail`` its parts (bytes per category, device, the RSS cross-check)."""

    bytes: int
    method: str
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"bytes": self.bytes, "method": self.method, "detail": dict(self.detail)}


def _storage_key(t: torch.Tensor) -> tuple[int, int]:
    """(address, bytes) of the storage under ``t``; views share their base's storage."""
    try:
        s = t.untyped_storage()
        return s.data_ptr(), s.nbytes()
    except (RuntimeError, NotImplementedError):  # sparse or wrapper tensors have no one storage
        return id(t), t.nelement() * t.element_size()


class _Ledger:
    """Bytes per category, each storage counted once across all categories."""

    def __init__(self) -> None:
        self.seen: set[int] = set()
        self.parts: dict[str, int] = {}

    def add(self, category: str, tensors: Iterable[torch.Tensor]) -> None:
        self.add_keys(category, (_storage_key(t) for t in tensors))

    def add_keys(self, category: str, keys: Iterable[tuple[int, int]]) -> None:
        total = self.parts.setdefault(category, 0)
        for ptr, nbytes in keys:
            if ptr and ptr not in self.seen:  # ptr 0: an empty storage, nothing allocated
                self.seen.add(ptr)
                total += nbytes
        self.parts[category] = total


def _state_tensors(optimizer: torch.optim.Optimizer) -> Iterator[torch.Tensor]:
    for state in optimizer.state.values():
        yield from (v for v in state.values() if isinstance(v, torch.Tensor))


def measured_step(model: nn.Module, optimizer: torch.optim.Optimizer, xb: torch.Tensor,
                  yb: torch.Tensor, loss_fn: LossFn = F.cross_entropy,
                  precision: Precision | None = None) -> MemoryMeasure:
    """Run one :func:`train_step` and measure it (CUDA allocator peak, or CPU accounting).

    The accounting is done on every device (on CUDA it is in ``detail["accounted"]``); it
    assumes steady state, i.e. gradients and optimizer state exist as after any step.
    """
    device = xb.device
    # Only (address, size) is kept: holding the tensors would keep activations alive through
    # backward and inflate the very peak being measured. All saved storages are alive together
    # at the end of the forward pass, so an address identifies one storage there.
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        ptr, nbytes = _storage_key(t)
        saved[ptr] = nbytes
        return t

    hooks = torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        resident = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        loss = train_step(model, optimizer, xb, yb, loss_fn, hooks, precision)
        torch.cuda.synchronize(device)
        cuda = {"resident_before": resident, "peak": torch.cuda.max_memory_allocated(device),
                "reserved_peak": torch.cuda.max_memory_reserved(device),
                "device_total": torch.cuda.get_device_properties(device).total_memory}
        rss = None
    else:
        with RssWatch() as rss:
            loss = train_step(model, optimizer, xb, yb, loss_fn, hooks, precision)

    # Model and batch first: autograd saves weights and inputs too, and they are counted once.
    # Gradients and optimizer state are never saved by autograd, but a new gradient may reuse
    # a freed activation's address, so they go in a ledger of their own.
    ledger, state = _Ledger(), _Ledger()
    ledger.add("model", [*model.parameters(), *model.buffers()])
    state.seen |= ledger.seen  # the model's storages are alive all along: no address reuse
    ledger.add("batch", [xb, yb])
    ledger.add_keys("activations", [*saved.items(), _storage_key(loss)])
    state.add("grads", [p.grad for p in model.parameters() if p.grad is not None])
    state.add("optimizer_state", _state_tensors(optimizer))
    parts = {**ledger.parts, **state.parts}
    accounted = sum(parts.values())
    detail: dict[str, Any] = {"device": str(device), "batch_size": len(xb), **parts,
                              "accounted": accounted}
    if device.type == "cuda":
        detail.update(cuda)
        return MemoryMeasure(cuda["peak"], "cuda_max_allocated", detail)
    assert rss is not None
    detail.update(rss_growth=rss.growth, rss_method=rss.method, rss_peak=rss.peak)
    return MemoryMeasure(accounted, "cpu_accounting", detail)


def steady_step_memory(model: nn.Module, optimizer: torch.optim.Optimizer,
                       batches: Iterator[Batch], loss_fn: LossFn = F.cross_entropy,
                       precision: Precision | None = None) -> MemoryMeasure:
    """Peak memory of a steady-state step; returns after 1 step on CPU, 2 on CUDA
    (``detail["steps"]``).

    On CUDA the allocator measures only what exists, so a first, unmeasured step creates the
    gradients and optimizer state that every later step carries; the CPU accounting counts
    them from the first step on.
    """
    xb, yb = next(batches)
    steps = 1
    if xb.device.type == "cuda":
        train_step(model, optimizer, xb, yb, loss_fn, precision=precision)
        xb, yb = next(batches)
        steps = 2
    measure = measured_step(model, optimizer, xb, yb, loss_fn, precision)
    measure.detail["steps"] = steps  # callers count these as warm-up
    return measure


def step_memory(setup_or_model: ProbeSetup | nn.Module, batch_size: int, *,
                input_shape: tuple[int, ...] | None = None, num_classes: int | None = None,
                make_optimizer: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer] | None = None,
                seed: int = 0) -> MemoryMeasure:
    """Peak memory of one training step at ``batch_size`` (see the module docstring).

    ``setup_or_model``: a :class:`ProbeSetup` (its model is trained by this call: a probe's
    setup is its own; batches come from its data, its optimizer at the scaled LR), or a bare
    ``nn.Module``, which is deep-copied first (the caller's module is never touched) and fed
    random inputs of ``input_shape`` with labels below ``num_classes`` (both required then),
    optimised by ``make_optimizer(params)`` (default: SGD, lr 0.01, momentum 0.9, the
    spec's defaults). torch's global RNG state is the same afterwards. Out-of-memory and any
    other error propagate unchanged.
    """
    if batch_size < 1:
        raise ProbeError(f"batch size must be at least 1, got {batch_size}.")
    with isolated_rng():
        gen = torch.Generator().manual_seed(seed)
        if isinstance(setup_or_model, ProbeSetup):
            setup = setup_or_model
            return steady_step_memory(setup.model, setup_optimizer(setup, batch_size),
                                      setup_batches(setup, batch_size, gen), setup.loss_fn,
                                      setup.precision)
        if input_shape is None or num_classes is None:
            raise ProbeError("step_memory on a bare nn.Module needs input_shape (one example's "
                             "shape) and num_classes, to make a batch; or pass a ProbeSetup.")
        model = private_copy(setup_or_model)
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        opt = (make_optimizer or _default_optimizer)(model.parameters())

        def random_batches() -> Iterator[Batch]:
            while True:
                x = torch.randn(batch_size, *input_shape, generator=gen)
                y = torch.randint(0, num_classes, (batch_size,), generator=gen)
                yield x.to(device), y.to(device)

        return steady_step_memory(model, opt, random_batches())


def _default_optimizer(params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=0.01, momentum=0.9)
