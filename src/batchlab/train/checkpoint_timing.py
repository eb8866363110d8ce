"""*When* the loop writes a checkpoint: at an epoch end, on a time budget.

Writing one every epoch made checkpoints cost about 40 % of the run time on small models
(a few milliseconds per write against epochs of tens of milliseconds; issue 9). Instead:

- the first epoch end of a run (or of a resumed attempt) always writes one: the run then has
  a restart point early, and the write's measured cost calibrates the budget on this machine,
  this model and this disk;
- after that, an epoch end writes one once at least ``cost / budget`` seconds have passed
  since the previous write ended, ``cost`` being what that write took. With ``budget`` = 0.02
  checkpoints take at most ~2 % of the time after the first one, whatever the model size or
  disk speed: a 2 ms write waits 0.1 s, a 2 s write (a large model) waits 100 s.

What a crash can lose is therefore the work since the last checkpoint: at most about one
interval plus one epoch. Resumes stay exact whichever epoch end the checkpoint came from
(writing one changes no state of the run), so this module decides only timing; what a
checkpoint holds and how it is written is ``train/checkpoint.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

BUDGET = 0.02  # the largest share of training time that checkpoint writes may take


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


class CheckpointTimer:
    """Applies :func:`checkpoint_due` with a clock. At an epoch end: ``if timer.due():``
    ``timer.start()``, write, ``timer.written()`` (a write that raises is never counted).

    ``clock``: seconds, monotonic (``time.perf_counter``; tests pass a fake one).
    """

    def __init__(self, budget: float = BUDGET, clock: Callable[[], float] = time.perf_counter) -> None:
        checkpoint_due(0.0, None, budget)  # validate the budget now, not at the first epoch end
        self.budget = budget
        self.clock = clock
        self.last_cost: float | None = None
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
