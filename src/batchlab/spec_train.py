"""How a run's processes and micro-batches divide its batch: the checks ``spec.TrainSpec``
runs on its devices, DDP and accumulation fields together (each field alone is valid; their
combination may not train), as plain functions of the validated fields.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the model that calls these, below: only its fields are read here
    from batchlab.spec import TrainSpec


def devices_error(t: TrainSpec) -> str | None:
    """Why ``devices`` / ``strategy`` / ``sync_batchnorm`` cannot train this run, or None.

    Every process takes an equal share of every full batch, so the devices divide the batch."""
    if t.devices > 1 and t.strategy != "ddp":
        return (f"train.devices = {t.devices} trains one run in {t.devices} processes, which "
                "needs train.strategy = 'ddp' (DistributedDataParallel, the one multi-process "
                "strategy); set it, or set train.devices = 1")
    if t.devices > 1 and t.batch_size % t.devices:
        fits = [b for b in (t.batch_size - t.batch_size % t.devices,
                            t.batch_size + t.devices - t.batch_size % t.devices) if b > 0]
        return (f"train.batch_size = {t.batch_size} is the global batch, which train.devices = "
                f"{t.devices} processes share equally, and {t.devices} does not divide it; use "
                f"a multiple of {t.devices} (e.g. {' or '.join(map(str, fits))}) or other devices")
    if t.devices > 1 and t.function is not None:
        return (f"train.devices = {t.devices} applies to batchlab's own loop; a train.function "
                "starts its own processes if it wants several, so leave train.devices at 1")
    if t.devices > 1 and t.measure_noise_scale:
        return (f"train.measure_noise_scale is not measured in a run over train.devices = "
                f"{t.devices} processes; measure it in a 1-device run of the same model (or "
                "with 'batchlab noise-scale'), or turn it off here")
    if t.sync_batchnorm and t.strategy != "ddp":
        return ("train.sync_batchnorm = true synchronises BatchNorm across the processes of a "
                "DDP run; set train.strategy = 'ddp' with train.devices > 1, or drop it")
    return None


def accumulation_error(t: TrainSpec) -> str | None:
    """Why ``accumulate`` / ``micro_batch_size`` cannot split a process's share of the batch
    (``batch_size`` itself with one device), or None.

    Micro-batches are equal so that every forward/backward of a full batch needs the same
    memory (the one max-batch measured); a micro_batch_size at or above the batch is no split.
    """
    if t.accumulate > 1 and t.micro_batch_size is not None:
        return ("set train.accumulate or train.micro_batch_size, not both: accumulate = N splits "
                "every batch into N micro-batches, micro_batch_size = M into batch_size / M")
    batch, name = t.device_batch(), "train.batch_size"
    if t.devices > 1:
        name = f"the per-device batch (train.batch_size / train.devices = {t.batch_size} / {t.devices})"
    if batch % t.accumulate:
        divisors = [d for d in range(2, batch + 1) if batch % d == 0][:6]
        return (f"train.accumulate = {t.accumulate} does not divide {name} = "
                f"{batch} into equal micro-batches; use one of its divisors "
                f"({', '.join(map(str, divisors)) or 'only 1'}), or set train.micro_batch_size")
    m = t.micro_batch_size
    if m is not None and m < batch and batch % m:
        return (f"train.micro_batch_size = {m} does not divide {name} = {batch} "
                f"into equal micro-batches; use a divisor of the batch size (e.g. "
                f"{max(d for d in range(1, m + 1) if batch % d == 0)}) or change the batch")
    return None


def batchnorm_error(t: TrainSpec, model: str) -> str | None:
    """Why model ``model``, whose BatchNorm layers train, cannot train with this split of the
    batch, or None: BatchNorm in training mode refuses a forward pass of one example (one value
    per channel after global pooling has no batch statistics), so each process's micro-batch
    must hold 2 at least. Refused before anything trains: the run would fail at its first step."""
    if t.micro_batch() >= 2:
        return None
    bn = (f"model '{model}' has BatchNorm layers, which cannot train on one example per forward "
          "pass (one value per channel has no batch statistics)")
    share = "" if t.devices == 1 else f" over train.devices = {t.devices} processes"
    if t.device_batch() == 1:
        return (f"train.batch_size = {t.batch_size}{share} forwards 1 example at a time, but {bn}; "
                f"use train.batch_size = {2 * t.devices} or more")
    if t.micro_batch_size is not None:
        return (f"train.micro_batch_size = 1 forwards 1 example at a time, but {bn}; set "
                "train.micro_batch_size = 2 or more (or drop it: no accumulation)")
    batch = t.device_batch()
    fewer = max(k for k in range(1, t.accumulate) if batch % k == 0 and batch // k >= 2)
    what = f"train.accumulate = {fewer} (micro-batches of {batch // fewer})" if fewer > 1 \
        else "no train.accumulate (one forward pass per batch)"
    return (f"train.batch_size = {t.batch_size}{share} with train.accumulate = {t.accumulate} "
            f"forwards micro-batches of 1 example, but {bn}; use {what}, or a batch of "
            f"{2 * t.batch_size} with the same accumulation")
