"""A PyTorch Lightning logger that records a ``Trainer.fit`` into a batchlab store
(extra ``lightning``).

    logger = BatchlabLogger("my-study", config={"n_train": len(train_set)})
    trainer = L.Trainer(logger=logger, log_every_n_steps=1,
                        callbacks=[LearningRateMonitor(logging_interval="step")])

Whatever the module logs lands under batchlab's names (``loss``/``train_loss`` -> train_loss,
``val_acc``/``val_accuracy`` -> val_acc, LearningRateMonitor's ``lr-SGD`` -> lr, see
``batchlab.integrations.names``); the module's hyper-parameters (``save_hyperparameters``) and
``config`` become the run's config, so ``batch_size`` and ``lr`` in either place are used.
Lightning passes step = updates done - 1 (the global step before the update finishes); rows
are stored at updates done, as the batchlab trainer stores them. Lightning logs the training
loss every ``log_every_n_steps`` (default 50): set 1 for per-step curves. Its aggregated
``*_epoch`` twins of per-step values are not stored (the per-step values are).
A crash marks the run failed, Ctrl-C interrupted.

Each fit's files (``ModelCheckpoint``'s checkpoints) go to its own folder,
``<save_dir>/<experiment>/<run id>/`` (``save_dir``: default the Trainer's
``default_root_dir``), since the run id is the logger's ``version``, known before the fit starts.
"""

from __future__ import annotations

import sys
import warnings
from argparse import Namespace
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only

from batchlab.apispec import user_config
from batchlab.errors import SpecError
from batchlab.events import COMPLETED, FAILED
from batchlab.integrations.names import batchlab_names
from batchlab.paths import safe_name
from batchlab.store import Store
from batchlab.track import TrackedRun, tracked_run_id


def _plain(params: dict[str, Any]) -> dict[str, Any]:
    """Hyper-parameters as JSON-friendly values (objects become their repr)."""
    return {k: v if isinstance(v, int | float | str | bool | type(None)) else repr(v)
            for k, v in params.items()}


class BatchlabLogger(Logger):
    """Records one fit as one batchlab run of ``experiment`` in ``store``."""

    def __init__(self, experiment: str = "", config: dict[str, Any] | None = None,
                 store: str | Path | Store = "batchlab.db", *, name: str | None = None,
                 save_dir: str | Path | None = None, run: TrackedRun | None = None) -> None:
        """``run``: record into that run instead, the run a function sweep hands its training
        function (``BatchlabLogger(run=run)``); the sweep then ends the run, not the logger.
        ``save_dir``: where the checkpoints' ``<name>/<version>/`` folder goes."""
        super().__init__()
        if not experiment and run is None:
            raise SpecError("BatchlabLogger needs an experiment name (BatchlabLogger(\"my-study\")), "
                            "or run= inside a function sweep (BatchlabLogger(run=run)).")
        self.experiment, self.store, self.run_name = (
            experiment or run.experiment, store, name)  # type: ignore[union-attr]
        self.user_config = user_config(config, "BatchlabLogger")  # bad: refused here, not in fit
        self.hparams: dict[str, Any] = {}
        self.run: TrackedRun | None = run
        self.done = False  # one logger records one fit; a later validate/test is not recorded
        self.warned = False  # ... and says so once
        # known now: Lightning reads version (the checkpoint folder) before anything is logged
        self.run_id = run.id if run is not None else tracked_run_id(experiment, name)
        self._save_dir = None if save_dir is None else str(save_dir)

    @property
    def name(self) -> str:
        """The experiment as a folder name (``safe_name``: it is part of the checkpoint path)."""
        return safe_name(self.experiment)

    @property
    def version(self) -> str:
        """The run id: every fit's checkpoints get a folder of their own."""
        return self.run_id

    @property
    def save_dir(self) -> str | None:
        """Where ``<name>/<version>/`` goes; None: the Trainer's ``default_root_dir``."""
        return self._save_dir

    def _open(self) -> TrackedRun:
        if self.run is None:
            config = _plain(self.hparams) | self.user_config
            self.run = TrackedRun(self.experiment, config, self.store, name=self.run_name,
                                  run_id=self.run_id).start()
        return self.run

    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any) -> None:
        """Kept as the run's config (Lightning calls this before the first metrics)."""
        self.hparams |= dict(vars(params) if isinstance(params, Namespace) else params)

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        if self.done:
            if not self.warned:  # said once: a validate after the fit logs on every batch
                self.warned = True
                warnings.warn(f"BatchlabLogger records one fit: metrics logged after run "
                              f"'{self.run_id}' ended (a trainer.validate or test, or a second "
                              "fit) are not stored; give each fit a new BatchlabLogger.",
                              stacklevel=2)
            return
        run = self._open()
        logged = {key.removesuffix("_step"): value for key, value in metrics.items()
                  if not key.endswith("_epoch")}
        values = {name: logged[key] for key, name in batchlab_names(logged).items()}
        if values:
            run.log((step if step is not None else run.last_step) + 1, **values)

    @rank_zero_only
    def finalize(self, status: str) -> None:
        """``success`` completes the run; ``failed`` (any exception, Ctrl-C included) ends it as
        the exception being handled says: interrupted for KeyboardInterrupt, else failed."""
        if self.run is None:
            return
        run, self.run, self.done = self.run, None, True
        if status == "failed":
            err = sys.exc_info()[1]
            if err is not None:
                run.__exit__(type(err), err, None)
            else:
                run.finish(FAILED, "training failed (Lightning reported no exception)")
        else:
            run.finish(COMPLETED)
