"""*When* the loop writes a checkpoint: at an epoch end, on a time budget.

Writing one every epoch made checkpoints cost about 40 % of the run time on small models
(a few milliseconds per write against epochs of tens of milliseconds; issue 9). Instead:

- an epoch end writes one once at least ``cost / budget`` seconds have passed since the
  previous write ended (or since the run began), ``cost`` being what that write took. With
  ``budget`` = 0.02 checkpoints take at most ~2 % of the time, whatever the model size or disk
  speed: a 2 ms write waits 0.1 s, a 2 s write (a large model) waits 100 s;
- before a run's first write its cost is not known yet. When this process has already written
  a checkpoint of the same size (the previous run of a sweep's worker: same model and
  optimizer), that measured cost stands in (``measured_cost``), so a run shorter than
  ``cost / budget`` writes none at all; otherwise the first epoch end writes one, which gives
  the run an early restart point and calibrates the budget on this machine and disk. (Writing
  the first one unconditionally cost each short run of a sweep ~7 % of its time.)

What a crash can lose is therefore the work since the last checkpoint: at most about one
interval plus one epoch. Resumes stay exact whichever epoch end the checkpoint came from
(writing one changes no state of the run), so this module decides only timing; what a
checkpoint holds and how it is written is ``train/checkpoint.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

BUDGET = 0.02  # the largest share of training time that checkpoint writes may take

# Cost of the latest write in this process per checkpoint "size key" (the caller's choice, e.g.
# the state's element count and the optimizer): the prior for the next run's first write.
_MEASURED: dict[object, float] = {}


def measured_cost(key: object) -> float | None:
    """Seconds the latest checkpoint write of this ``key`` took in this process, or None."""
    return _MEASURED.get(key)


def checkpoint_due(since_last: float, last_cost: float | None, budget: float = BUDGET) -> bool:
    """Whether to write a checkpoint at this epoch end.

    ``since_last``: seconds since the previous write *ended*; ``last_cost``: seconds that
    write took, None when none was written yet in this attempt (then always due). Due once
    ``since_last >= last_cost / budget``, so a write costs at most ``budget`` of the time
    from one write's start to the next one's. ValueError unless 0 < ``budget`` <= 1.
    """
    if not 0 < budget <= 1:
        raise ValueError(f"the checkpoint budget is a fraction of run time in (0, 1], got {budget}")
    if last_cost is None:
        return True
    return since_last * budget >= last_cost


def checkpoint_key(model: torch.nn.Module, optimizer: str) -> tuple[int, str]:
    """What a run's checkpoint cost depends on: the model state's element count and the
    optimizer (whose state is a multiple of it)."""
    return sum(v.numel() for v in model.state_dict().values()), optimizer


class CheckpointTimer:
    """Applies :func:`checkpoint_due` with a clock. At an epoch end: ``if timer.due():``
    ``timer.start()``, write, ``timer.written()`` (a write that raises is never counted).

    ``clock``: seconds, monotonic (``time.perf_counter``; tests pass a fake one). ``key``:
    what makes two runs' checkpoints cost the same (None: no prior); a write's measured cost
    is remembered under it, and a new timer with that key starts from it (``measured_cost``)
    instead of writing at the first epoch end.
    """

    def __init__(self, budget: float = BUDGET, clock: Callable[[], float] = time.perf_counter,
                 key: object = None) -> None:
        checkpoint_due(0.0, None, budget)  # validate the budget now, not at the first epoch end
        self.budget = budget
        self.clock = clock
        self.key = key
        self.last_cost: float | None = None if key is None else measured_cost(key)
        self._last_end = clock()
        self._start = self._last_end

    def due(self) -> bool:
        return checkpoint_due(self.clock() - self._last_end, self.last_cost, self.budget)

    def start(self) -> None:
        """A write begins now."""
        self._start = self.clock()

    def written(self) -> None:
        """The write begun at ``start()`` is done: its cost sets the next interval."""
        self._last_end = self.clock()
        self.last_cost = self._last_end - self._start
        if self.key is not None:
            _MEASURED[self.key] = self.last_cost
