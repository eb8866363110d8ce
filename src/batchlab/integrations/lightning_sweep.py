"""Lightning inside a function sweep: the sweep's pruning as a Lightning callback.

    def train(run):                       # bl.sweep("study", train, grid=...)
        trainer = L.Trainer(max_epochs=run.config["epochs"], logger=BatchlabLogger(run=run),
                            callbacks=[BatchlabPruning(run)])
        trainer.fit(module, train_loader, val_loader)

``BatchlabLogger(run=run)`` records the fit into the sweep's run; ``BatchlabPruning`` asks
``run.should_stop()`` after every validation (the logger has handed it the validation
metrics by then) and stops the fit when the sweep prunes the run (hopeless, or at a
successive-halving rung), as Optuna's ``PyTorchLightningPruningCallback`` does.
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import Callback


class BatchlabPruning(Callback):
    """Stop ``Trainer.fit`` once the function sweep's run should stop (see the module doc)."""

    def __init__(self, run: Any) -> None:
        super().__init__()
        self.run = run

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking:  # Lightning's pre-fit check logs nothing
            return
        if self.run.should_stop():
            trainer.should_stop = True
