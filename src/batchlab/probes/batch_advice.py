"""How max-batch's answer reads: accumulation advice, and per-device vs global batch.

The memory search measures one process's step, so what fits is a batch *per device*. With
``train.devices = N`` (DDP) the batch that trains is the global one, N x per device: every
sentence then names both ("largest batch per device 512 -> global 1,024 over 2 processes"),
and the accumulation advice splits each process's share of the global batch.
"""

from __future__ import annotations

from typing import Any

from batchlab.train.accumulate import BN_MIN_BATCH


def accumulation_split(want: int, fits: int, min_micro: int = 1) -> tuple[int, int] | None:
    """(accumulate, micro): the fewest equal micro-batches of at most ``fits`` examples and at
    least ``min_micro`` (2 for a model whose BatchNorm trains: it refuses one example) that
    make a batch of ``want``; (1, want) when it fits as it is. Always exists with
    ``min_micro`` 1 (micro 1 fits); None where no divisor of ``want`` lies in between (a prime
    batch larger than ``fits``, with ``min_micro`` 2)."""
    k = -(-want // max(fits, 1))
    while want % k:
        k += 1
    return (k, want // k) if want // k >= min_micro else None


def accumulation_advice(want: int, fits: int, with_margin: bool, batchnorm: bool,
                        n_train: int, devices: int = 1, stopped_by: str | None = None) -> str:
    """One sentence: whether batch ``want`` fits in one step of at most ``fits`` examples (per
    device: ``want`` is the global batch over ``devices`` processes, each taking
    ``want / devices``), and if not, the train.accumulate / train.micro_batch_size that
    reaches it.

    Accumulation is advised only where memory is the limit. A ``want`` larger than the
    ``n_train`` training examples is refused as the spec refuses it, with no split.
    ``stopped_by``: what ended the search when ``fits`` is where it stopped without a memory
    failure ("max_batch", "cpu cap", "dataset size"), else None; a larger ``want`` was then
    never tried, and the sentence says so instead of advising a split built on the cap.
    """
    if want > n_train:
        # a sweep refuses it (execute.sweep.refuse_batches_larger_than_data): advising a split
        # would send the user to a spec that does not run
        return (f"batch {want} is larger than the {n_train} training examples: the spec refuses "
                f"it (a batch cannot be larger than the training set), so no accumulation can "
                f"reach it; use a batch of at most {n_train} (full batch) or more data.")
    if want % devices:
        fits_any = want - want % devices or devices
        return (f"batch {want} does not split equally over {devices} processes (train.devices); "
                f"use a multiple of {devices}, e.g. {fits_any}.")
    share = want // devices
    where = "within the margin" if with_margin else "at all"
    split = accumulation_split(share, fits, 2 if batchnorm else 1)
    k, micro = split or (0, 0)
    over = f" ({share} per device over {devices} processes)" if devices > 1 else ""
    per = " per device" if devices > 1 else ""
    if k == 1:
        return (f"batch {want}{over} fits in one step ({fits}{per} fit {where}): no accumulation "
                "needed.")
    if stopped_by is not None:
        return (f"batch {want}{over} was not tried: {_stop_words(stopped_by, fits, per)}, not at "
                f"a memory limit, so whether it fits in one step is unknown; "
                f"{_search_further(stopped_by, share)}.")
    if split is None:
        return _no_batchnorm_split(want, share, fits, where, devices)
    split_words = (f"{share} per device = {k} x {micro}" if devices > 1 else f"batch {want} = {k} x {micro}")
    text = (f"batch {want}{over} does not fit in one step (at most {fits}{per} {where}); "
            f"reach it by gradient accumulation: {split_words} with train.accumulate = {k} "
            f"(or train.micro_batch_size = {micro}): the update is batch {want}'s, memory "
            f"holds {micro}{per} at a time.")
    if batchnorm and micro < BN_MIN_BATCH:
        text += (f" The model has BatchNorm, which normalises each micro-batch of {micro} on its "
                 f"own: its statistics get noisy below ~{BN_MIN_BATCH} examples.")
    return text


def _no_batchnorm_split(want: int, share: int, fits: int, where: str, devices: int) -> str:
    """The advice where the only equal split of a process's ``share`` into micro-batches of at
    most ``fits`` is one example each, which a model whose BatchNorm trains refuses: the
    nearest smaller batch that splits into micro-batches of 2 or more."""
    per = " per device" if devices > 1 else ""
    splits = ((b, s) for b in range(share - 1, 1, -1) if (s := accumulation_split(b, fits, 2)))
    near = next(splits, None)  # None only where not even 2 examples fit in one step
    use = "no larger batch can train this model here" if near is None else (
        f"use a batch that splits, e.g. {near[0] * devices} = {near[1][0]} x {near[1][1]}{per} "
        f"with train.accumulate = {near[1][0]}")
    return (f"batch {want} does not fit in one step (at most {fits}{per} {where}), and the only "
            f"equal split of {share}{per} into parts that fit is {share} x 1, which the model's "
            f"BatchNorm cannot train (it needs 2 examples per forward pass); {use}.")


def _stop_words(stopped_by: str, at: int, per: str) -> str:
    """Where the search stopped without a memory failure, in words."""
    return {
        "max_batch": f"the search stopped at {at}{per}, the largest batch allowed (--max, "
                     "max_batch=)",
        "cpu cap": f"the search stopped at {at}{per}, the CPU cap without a memory limit",
    }.get(stopped_by, f"the search stopped at {at}{per} ({stopped_by})")


def _search_further(stopped_by: str, share: int) -> str:
    """How to let the search reach a batch of ``share`` per device."""
    if stopped_by == "max_batch":
        return f"raise --max (max_batch=) to at least {share} to measure it"
    if stopped_by == "cpu cap":
        return "give a memory limit (--memory-limit, memory_limit=) to search further"
    return "it cannot be searched further"


def per_device(batch: int | None, devices: int) -> str:
    """``batch`` (one device's) as it reads: "512" alone, or "512 per device -> global 1,024"
    over several processes."""
    if batch is None or devices == 1:
        return str(batch)
    return f"{batch:,} per device → global {batch * devices:,}"


def fit_line(r: Any, margin: float) -> str:
    """The max-batch answer in one line (``r``: a ``MaxBatchResult``): largest and recommended,
    per device and global when the run trains over several processes."""
    n = r.devices
    if n == 1:
        return (f"largest that fits: {r.largest} (search ended by: {r.limited_by}); "
                f"recommended with a {margin:.0%} margin: {r.recommended} "
                f"(power of two: {r.recommended_pow2})")
    return (f"largest batch per device that fits: {r.largest:,} → global {r.largest * n:,} over "
            f"{n} processes (search ended by: {r.limited_by}); recommended with a {margin:.0%} "
            f"margin: {per_device(r.recommended, n)} (power of two: "
            f"{per_device(r.recommended_pow2, n)})")
