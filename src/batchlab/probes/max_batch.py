"""The largest batch size that fits in memory, and a recommended one with a safety margin.

Search: double from ``start`` until a trial fails, then binary-search between the last batch
that fit and the first that failed. On a model with BatchNorm layers the search starts at 2 at
least (``BN_SEARCH_START``, with a note): in training mode BatchNorm refuses a batch of 1
wherever a channel holds one value (after a Linear layer or global pooling), an error that says
nothing about memory. Each trial is one full training step (forward, backward,
optimizer step; two on CUDA, see ``memory.steady_step_memory``) on a *fresh* model and
optimizer from ``probes.common.fresh_setup``: nothing persists between trials, and no model of
the caller's is ever touched. A trial fails when

- the step runs out of memory (``memory.is_oom``: CUDA OOM, the CPU allocator's failure,
  MemoryError): recorded, memory released, the search goes on below it; or
- its measured peak (``memory.measured_step``) exceeds ``memory_limit``.

Any other error is not an OOM and is never swallowed: the search re-raises it unchanged, and
:func:`max_batch` (the API boundary) turns it into a ProbeError that quotes the original
message (the original is its ``__cause__``).

The search stops at the training set size (a batch cannot be larger), at ``max_batch``, and on
CPU without a memory limit at ``CPU_CAP`` (2**16). On CPU a too-large allocation rarely fails
cleanly (the OS overcommits, then swaps or kills the process), so the host is protected by
what the process really uses (``probes.host``): a CPU trial's peak is the larger of its
accounted step and how far the process's resident peak during the step rose above its size
when the probe started, and a trial fits only within ``HOST_FRACTION`` of the host memory
available at the start. A trial is not run at all when the line through the two largest
measured peaks predicts more than that share; it is recorded as not fitting.

**Margin.** A batch that barely fits fails later (fragmentation, a longer input, evaluation on
the side), so ``recommended`` is the largest batch whose measured peak is at most
``(1 - margin) * limit``, found by a second binary search, so it is exact, not just the largest
tried. ``limit`` is ``memory_limit``, else the GPU's total memory, else on CPU the share of
the host a trial may take (``HOST_FRACTION`` of MemAvailable at the start), so the margin is
kept inside that share. It is *not* rounded to a power of two: the peak grows
linearly with the batch, so rounding down would give away up to half of the usable batch for
nothing the margin does not already buy; ``recommended_pow2`` is reported beside it for
those who want one (e.g. to keep a power-of-two batch grid).

**The batch you want.** ``want`` (default: the config's ``train.batch_size``) is compared with
what fits (``recommended``, else ``largest``): when it does not fit in one step, ``advice``
says how to reach it by gradient accumulation (``accumulation_split``: the fewest equal
micro-batches that fit), e.g. "batch 128 = 4 x 32 with train.accumulate = 4", and warns when
the model's BatchNorm would then see fewer than ``BN_MIN_BATCH`` examples per micro-batch.
Only memory (or the margin) justifies a split: when ``max_batch`` or the CPU cap stopped the
search below ``want``, ``want`` was never tried and the advice says so; a ``want`` larger
than the training set is refused, as the spec refuses it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from batchlab.data.pipeline import LoadedData, mem_available
from batchlab.errors import BatchlabError
from batchlab.probes.batch_advice import accumulation_advice, accumulation_split
from batchlab.probes.batch_search import Trial, predict_peak, search_batch_size
from batchlab.probes.common import ProbeError, fresh_setup, isolated_rng, load_probe_data
from batchlab.probes.host import HOST_FRACTION, HostBudget, resident_bytes, warm_up
from batchlab.probes.memory import (
    MemoryMeasure,
    format_size,
    is_oom,
    probe_device,
    release_memory,
    setup_batches,
    setup_optimizer,
    steady_step_memory,
)
from batchlab.probes.plotting import Plottable
from batchlab.spec import RunConfig
from batchlab.train.accumulate import has_batchnorm
from batchlab.train.inputs import RunInputs

CPU_CAP = 2**16  # largest batch tried on CPU without a memory limit
#: the smallest batch tried on a model with BatchNorm layers: in training mode they refuse a
#: batch of 1 wherever a channel has a single value (after a Linear layer, global pooling)
BN_SEARCH_START = 2


# --------------------------------------------------------------------------- the probe


@dataclass(frozen=True)
class MaxBatchResult(Plottable):
    """The answer and its evidence. Sizes in bytes; ``trials`` in the order they ran.

    ``largest``: the largest batch that fit. ``recommended``: the largest whose peak is within
    ``threshold_bytes = (1 - margin) * limit_bytes`` (None when even the smallest fitting batch
    exceeds it); ``recommended_pow2``: the largest power of two <= recommended.
    ``limited_by``: what ended the search: "memory", "dataset size", "max_batch" or "cpu cap".
    ``want``: the batch the user wants; ``accumulate`` x ``micro_batch_size`` = ``want`` is how
    to reach it in steps that fit (accumulate 1 when it fits as it is); both None when ``want``
    is larger than the training set (the spec refuses it) or was never tried because a cap,
    not memory, stopped the search below it; ``advice`` says which.
    """

    KIND: ClassVar[str] = "max_batch"

    largest: int
    recommended: int | None
    recommended_pow2: int | None
    margin: float
    memory_limit: int | None
    limit_bytes: int | None
    limit_source: str
    threshold_bytes: int | None
    limited_by: str
    upper: int
    n_train: int
    device: str
    method: str
    trials: list[Trial]
    wall_time: float
    notes: list[str] = field(default_factory=list)
    want: int | None = None
    accumulate: int | None = None
    micro_batch_size: int | None = None
    advice: str | None = None
    devices: int = 1  # a run over processes (train.devices): every batch size is per device

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, for ``Store.add_probe(experiment, "max_batch", config, result)``."""
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "trials"}
        out["notes"] = list(self.notes)
        out["trials"] = [t._asdict() for t in self.trials]
        return out


def max_batch(config: RunConfig, *, memory_limit: int | None = None, margin: float = 0.1,
              max_batch: int | None = None, start: int = 1,
              model: nn.Module | None = None, inputs: RunInputs | None = None,
              want: int | None = None) -> MaxBatchResult:
    """Find the largest batch size of ``config`` that trains within memory (see module doc).

    ``memory_limit``: bytes a step may use (``memory.parse_size("4GiB")`` reads human sizes);
    None: the device's real limit (an OOM). ``margin``: fraction of the limit kept free in the
    recommendation, 0 <= margin < 1. ``max_batch``: never try more. ``start``: first batch
    tried (>= 1; at least ``BN_SEARCH_START`` on a model with BatchNorm layers, with a note).
    ``model``: probe this module's architecture and weights instead of building
    ``config.model`` (each trial trains its own deep copy; the module itself is never touched).
    ``inputs``: the caller's data/model/loss/optimizer builders (the Python API's objects).
    ``want``: the batch to advise on (default ``config.train.batch_size``; see module doc).
    torch's global RNG state is unchanged afterwards.

    Raises ProbeError for bad arguments, when batch size ``start`` does not fit (with what to
    try), and when a step fails with a non-OOM error (quoting it; the original is the cause).
    """
    _check_arguments(memory_limit, margin, max_batch, start)
    if want is not None and want < 1:
        raise ProbeError(f"want must be a batch size of at least 1, got {want}.")
    want = want or config.train.batch_size
    t0 = time.perf_counter()
    data = load_probe_data(config, inputs)
    device = probe_device(config)
    n_train = len(data.train_y)
    devices = config.train.devices  # the search is per device: one process's step
    caps = {"dataset size": n_train // devices}
    if max_batch is not None:
        caps["max_batch"] = max_batch
    if device.type == "cpu" and memory_limit is None:
        caps["cpu cap"] = CPU_CAP
    cap_name, upper = min(caps.items(), key=lambda kv: kv[1])
    with isolated_rng():
        batchnorm = has_batchnorm(fresh_setup(config, data, model=model, inputs=inputs).model)
    asked = start
    if batchnorm and upper >= BN_SEARCH_START:
        # BatchNorm in training mode refuses a batch of 1 (one value per channel, e.g. after
        # a Linear layer or global pooling): that is not a memory limit, so never try it.
        start = max(start, BN_SEARCH_START)
    budget = HostBudget(None, None)
    if device.type == "cpu":  # the process's size and the free memory it may take a share of
        warm_up(lambda: _fresh_step_memory(config, data, min(start, upper), model, inputs))
        release_memory(device)
        budget = HostBudget(mem_available(), resident_bytes())
    limit, limit_source = _margin_reference(memory_limit, device, budget)
    threshold = None if limit is None else int((1 - margin) * limit)
    guard, host = budget.share, format_size(budget.available)
    methods: set[str] = set()
    measured: dict[int, int] = {}
    current = [0]  # the batch size being tried, for the error message

    def trial(b: int) -> Trial:
        current[0] = b
        release_memory(device)  # what the last trial left in the allocator is not this one's
        predicted = predict_peak(measured, b) if guard is not None else None
        if predicted is not None and predicted > guard:
            return Trial(b, None, False, f"not run: predicted {format_size(predicted)} > "
                         f"{HOST_FRACTION:.0%} of the {host} host memory available")
        try:
            measure = _fresh_step_memory(config, data, b, model, inputs)
        except Exception as err:
            if not is_oom(err):
                raise
            reason = f"out of memory: {str(err).splitlines()[0][:200]}"
        else:
            methods.add(measure.method)
            used = measured[b] = budget.used(measure.bytes, measure.detail.get("rss_peak"))
            if memory_limit is not None and used > memory_limit:
                return Trial(b, used, False, f"over the memory limit ({format_size(used)} > "
                             f"{format_size(memory_limit)})")
            if guard is not None and used > guard:
                return Trial(b, used, False, f"over {HOST_FRACTION:.0%} of the {host} host "
                             f"memory available ({format_size(used)} > {format_size(guard)})")
            return Trial(b, used, True, "fits")
        release_memory(device)  # outside the except block: the traceback is gone by now
        return Trial(b, None, False, reason)

    try:
        with isolated_rng():
            found = search_batch_size(trial, start=min(start, upper), upper=upper,
                                      threshold=threshold)
    except BatchlabError:
        raise
    except Exception as err:
        raise ProbeError(
            f"a training step at batch size {current[0]} failed with {type(err).__name__}: {err}. "
            "This is not an out-of-memory error, so max-batch cannot tell what fits; make the "
            f"model train at batch size {current[0]} first (e.g. with batchlab run), or start "
            "the search at a batch size it accepts (batchlab max-batch --start N, or "
            "bl.max_batch(..., start=N))."
        ) from err
    if found.largest == 0:
        raise ProbeError(_nothing_fits(found.trials, memory_limit, config))

    notes = []
    limited_by = cap_name if found.largest == upper else "memory"
    if limited_by != "memory":
        notes.append(_cap_note(limited_by, upper, devices))
    if start > upper:
        notes.append(f"start={start} is above the largest allowed batch {upper}; started there.")
    elif start != asked:
        notes.append(f"the model has BatchNorm layers, which cannot train on a batch of "
                     f"{asked} (they need more than one value per channel), so the search "
                     f"started at batch {start}.")
    recommended = found.recommended or None
    if budget.base is not None:
        notes.append("on CPU a batch's peak is what the process really took: the larger of its "
                     "step's tensors and the rise of its resident memory (VmHWM) in the step.")
    if threshold is None:
        notes.append("no memory budget is known on this machine, so no margin was applied.")
    elif recommended is None:
        notes.append(f"even batch size {min(t.batch_size for t in found.trials if t.fits)} needs "
                     f"more than {1 - margin:.0%} of {format_size(limit)}; no batch size keeps "
                     f"the margin of {margin:.0%}.")
    pow2 = None if recommended is None else 1 << (recommended.bit_length() - 1)
    per_step = recommended or found.largest
    # what fits in one step is known only up to where the search stopped: when a cap (not
    # memory, not the margin) set ``per_step``, a larger ``want`` was never tried
    stopped_by = limited_by if per_step == found.largest and limited_by != "memory" else None
    # a model whose BatchNorm trains refuses micro-batches of 1: none is advised (None: no split)
    split = accumulation_split(want // devices, per_step, 2 if batchnorm else 1)
    accumulate, micro = split or (None, None)
    if want > n_train or (split is not None and split[0] > 1 and stopped_by is not None):
        accumulate = micro = None  # refused by the spec, or unknown: no split to advise
    advice = accumulation_advice(want, per_step, recommended is not None, batchnorm, n_train,
                                 devices, stopped_by)
    return MaxBatchResult(
        largest=found.largest, recommended=recommended, recommended_pow2=pow2, margin=margin,
        memory_limit=memory_limit, limit_bytes=limit, limit_source=limit_source,
        threshold_bytes=threshold, limited_by=limited_by, upper=upper, n_train=n_train,
        device=str(device), method="/".join(sorted(methods)), trials=found.trials,
        wall_time=time.perf_counter() - t0, notes=notes, want=want, accumulate=accumulate,
        micro_batch_size=micro, advice=advice, devices=devices)


def _fresh_step_memory(config: RunConfig, data: LoadedData, batch_size: int,
                       model: nn.Module | None, inputs: RunInputs | None = None) -> MemoryMeasure:
    """One trial: a fresh model and optimizer, a steady-state step, its MemoryMeasure. Every
    tensor it makes is local, so all of it is freed when it returns or raises."""
    setup = fresh_setup(config, data, model=model, inputs=inputs)
    gen = torch.Generator().manual_seed(setup.seed)
    return steady_step_memory(setup.model, setup_optimizer(setup, batch_size),
                              setup_batches(setup, batch_size, gen), setup.loss_fn,
                              setup.precision)


def _check_arguments(memory_limit: int | None, margin: float, max_batch: int | None,
                     start: int) -> None:
    if memory_limit is not None and memory_limit <= 0:
        raise ProbeError(f"memory_limit must be a positive number of bytes, got {memory_limit}.")
    if not 0 <= margin < 1:
        raise ProbeError(f"margin must be a fraction in [0, 1), e.g. 0.1 for 10%, got {margin}.")
    if max_batch is not None and max_batch < 1:
        raise ProbeError(f"max_batch must be at least 1, got {max_batch}.")
    if start < 1:
        raise ProbeError(f"start must be at least 1, got {start}.")


def _margin_reference(memory_limit: int | None, device: torch.device,
                      budget: HostBudget) -> tuple[int | None, str]:
    """The memory the margin is taken from, and where that number came from."""
    if memory_limit is not None:
        return memory_limit, "memory_limit"
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory, "GPU total memory"
    if budget.share is None:
        return None, "none"
    return budget.share, f"{HOST_FRACTION:.0%} of the available host memory (MemAvailable)"



def _cap_note(limited_by: str, upper: int, devices: int = 1) -> str:
    if limited_by == "dataset size" and devices > 1:
        return (f"stopped at {upper} per device: over {devices} processes the global batch "
                "cannot be larger than the training set.")
    if limited_by == "dataset size":
        return f"stopped at the training set size ({upper} examples): a batch cannot be larger."
    if limited_by == "max_batch":
        return f"stopped at max_batch = {upper}; larger batches were not tried."
    return (f"stopped at {upper} = 2**16, the CPU cap without a memory limit; pass a memory "
            "limit to search further.")


def _nothing_fits(trials: list[Trial], memory_limit: int | None, config: RunConfig) -> str:
    first = min(trials, key=lambda t: t.batch_size)
    what = (f"its step needs {format_size(first.peak_bytes)}, over the memory limit of "
            f"{format_size(memory_limit)}" if first.peak_bytes is not None else first.reason)
    return (f"not even batch size {first.batch_size} fits: {what}. Try a smaller model "
            f"(model.name = '{config.model.name}'; e.g. fewer or narrower layers), a larger "
            "memory limit, or smaller inputs (e.g. data.image_size).")
