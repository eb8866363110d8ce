"""Stopping a run early, as its sweep asks (``sweep.prune``): the trainer's side.

The sweep hands each run a :class:`PruneOrder`; the loop keeps a :class:`Pruner` and asks it
after every evaluation whether the run is hopeless (the collapse rule of ``batchlab.collapse``,
shared with the diagnosis) and at every epoch end whether successive halving wants it paused.
A hopeless run ends with status ``pruned`` and the reason; a paused run ends ``interrupted``
with a checkpoint, and the sweep resumes it (or prunes it) once every run reached the rung.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from batchlab.collapse import CollapseRule, hopeless


@dataclass(frozen=True)
class PruneOrder:
    """What a sweep asks of one run (plain picklable data: it travels to worker processes).

    hopeless: stop the run as ``pruned`` once the collapse rule holds (``sweep.prune`` is
        "hopeless" or "halving").
    pause_at_examples: successive halving's rung: stop at the first epoch end at which at
        least this many examples have been seen, after evaluating and writing a checkpoint
        there (None: train to the end).
    rung: the rung in words, for the paused run's message ("rung 1 of 2").
    """

    hopeless: bool = True
    pause_at_examples: int | None = None
    rung: str = ""


@dataclass
class Pruner:
    """A run's evaluations so far and the verdicts on them (see the module doc)."""

    order: PruneOrder
    n_classes: int | None
    rule: CollapseRule = field(default_factory=CollapseRule)
    epochs: list[float] = field(default_factory=list)
    val_acc: list[float | None] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)

    def observe(self, epoch: float, val_acc: float | None, train_loss: float) -> str | None:
        """Record one evaluation; the reason to prune the run now, or None."""
        self.epochs.append(epoch)
        self.val_acc.append(val_acc)
        self.losses.append(train_loss if math.isfinite(train_loss) else math.inf)
        if not self.order.hopeless:
            return None
        return hopeless(self.epochs, self.val_acc, self.losses, self.n_classes, self.rule)

    def pause_due(self, examples: int) -> bool:
        """Whether halving wants the run paused now, at an epoch end with ``examples`` seen."""
        stop = self.order.pause_at_examples
        return stop is not None and examples >= stop

    def pause_message(self, examples: int) -> str:
        return (f"paused by successive halving at {examples} examples seen ({self.order.rung}); "
                "the sweep continues it or prunes it once every run reached this rung")

    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps, so a resumed run is judged on its whole history."""
        return {"epochs": self.epochs, "val_acc": self.val_acc, "losses": self.losses}

    def restore(self, state: dict[str, Any] | None) -> None:
        if state:
            self.epochs, self.val_acc = list(state["epochs"]), list(state["val_acc"])
            self.losses = list(state["losses"])
