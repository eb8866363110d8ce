"""How one epoch's examples are cut into training batches, the same for every batch source.

Consecutive batches of ``batch_size`` over the epoch's permutation, the last one partial, with
one exception: training-mode BatchNorm refuses a batch of a single example ("Expected more than
1 value per channel when training"), so a run whose training set is one more than a multiple of
its batch size failed at its first epoch's last step. The loop therefore asks for a
``min_batch`` (2 per process on a model with BatchNorm layers that train, 1 otherwise), and a
last batch below it takes the examples it lacks from the batch before it (with batches of at
least ``2 * min_batch - 1``; smaller ones keep the plain cut).

Why not drop the lone example (PyTorch's ``drop_last``): an epoch would then have one step
fewer on BatchNorm models only, and the steps per epoch are counted before any model is built
(``train.schedules.steps_per_epoch``: the sweep's plan, schedules over epochs, halving rungs,
the probes), so they would disagree with the loop. Moving an example keeps
``ceil(n_train / batch_size)`` steps and every example in every epoch; with ``min_batch = 1``
the cut is exactly the plain one, so runs without BatchNorm are unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator


def epoch_bounds(n: int, size: int, limit: int, min_batch: int = 1) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` of the first ``limit`` batches of an epoch over ``n`` examples:
    ``ceil(n / size)`` consecutive batches of ``size``, the last one partial. When the last
    would hold fewer than ``min_batch`` examples, the one before it hands it the examples it
    lacks (e.g. 53, 53, 52, 2 for 160 examples in batches of 53 with ``min_batch`` 2): the
    number of batches and the examples seen stay those of the plain cut, and a run cut short
    by ``limit`` sees the first batches of the whole epoch's cut. Where the batch before would
    fall under ``min_batch`` itself (``size + last < 2 * min_batch``, e.g. batches of 2), the
    plain cut is kept (a BatchNorm2d over several pixels trains on one example; a BatchNorm1d
    fails there as it always did). Lazy: one pair at a time.
    """
    batches = -(-n // size)
    last = n - (batches - 1) * size
    # the examples the last batch takes from the one before it (0: the plain cut)
    moved = min_batch - last if batches >= 2 and last < min_batch <= size + last - min_batch else 0
    for k in range(min(limit, batches)):
        start, stop = k * size, min((k + 1) * size, n)
        if k >= batches - 2 and moved:
            start, stop = (start, stop - moved) if k == batches - 2 else (start - moved, stop)
        yield start, stop
