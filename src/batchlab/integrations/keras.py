"""A Keras 3 callback that records ``model.fit`` into a batchlab store (extra ``keras``).

    cb = BatchlabCallback("lenet-digits", config={"batch_size": 16, "n_train": len(x_train)})
    model.fit(x_train, y_train, batch_size=16, validation_data=(x_val, y_val), callbacks=[cb])

Keras 3 runs on the PyTorch backend (``KERAS_BACKEND=torch``), so no TensorFlow is needed.
Recorded per batch: the batch's own loss and the optimizer's LR; per epoch: the validation
metrics and the epoch's training accuracy. Keras reports each batch's ``loss`` as the mean
since the epoch began, weighted by batch size; the batch's own loss is recovered from two
consecutive means, so give ``batch_size`` (and ``n_train``, for the last, partial batch and
for epoch / examples-seen axes) in ``config``. The optimizer, its initial LR, the epoch count,
steps per epoch and the model's name are taken from ``fit``; ``config`` overrides them.

Keras has no hook for an exception inside ``fit``: use the callback as a context manager
(``with BatchlabCallback(...) as cb: model.fit(..., callbacks=[cb])``) and a crash or Ctrl-C
marks the run failed or interrupted; otherwise ``on_train_end`` marks it completed.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType
from typing import Any

# batchlab is a PyTorch tool: Keras runs on torch unless the user chose a backend already
os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402

from batchlab.apispec import plain, user_config  # noqa: E402
from batchlab.integrations.names import batchlab_names  # noqa: E402
from batchlab.store import Store  # noqa: E402
from batchlab.track import TrackedRun  # noqa: E402


def _number(value: Any) -> float:
    """A Keras value as the decimal it prints as: the optimizer holds its LR as float32, whose
    0.01 is 0.009999999776482582 as a float64, which became the run's LR, its label and the
    next spec's, apart from a run given lr=0.01 (as ``bl.track`` reads numpy float32)."""
    return float(plain(keras.ops.convert_to_numpy(value)))


class BatchlabCallback(keras.callbacks.Callback):
    """Records one ``fit`` as one batchlab run of ``experiment`` in ``store``."""

    def __init__(self, experiment: str, config: dict[str, Any] | None = None,
                 store: str | Path | Store = "batchlab.db", *, name: str | None = None) -> None:
        super().__init__()
        self.experiment, self.store, self.name = experiment, store, name
        self.user_config = user_config(config, "BatchlabCallback")  # bad: refused here, not in fit
        self.run: TrackedRun | None = None
        self.step = 0

    # ------------------------------------------------------------------ fit hooks
    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        opt = self.model.optimizer
        lr = opt.learning_rate
        found = {"epochs": self.params.get("epochs"), "steps_per_epoch": self.params.get("steps"),
                 "optimizer": type(opt).__name__.lower(), "model": self.model.name,
                 # a schedule object has no single LR: the per-batch lr rows show it
                 "lr": _number(lr) if not callable(getattr(opt, "_learning_rate", None)) else None}
        config = {k: v for k, v in found.items() if v is not None} | self.user_config
        self.run = TrackedRun(self.experiment, config, self.store, name=self.name).start()
        self.step = 0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._total, self._seen, self._batch = 0.0, 0, 0

    def _batch_examples(self) -> int:
        """Examples in the current batch: 1 (equal weights) when the batch size is unknown."""
        size, n = self.user_config.get("batch_size"), self.user_config.get("n_train")
        if not size:
            return 1
        return max(1, min(size, n - self._seen)) if n else size

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.run is None or not logs or "loss" not in logs:
            return
        self.step += 1
        n_b = self._batch_examples()
        total = float(logs["loss"]) * (self._seen + n_b)  # the running mean times examples so far
        loss = (total - self._total) / n_b
        self._total, self._seen = total, self._seen + n_b
        self.run.log(self.step, train_loss=loss, lr=_number(self.model.optimizer.learning_rate))

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.run is None:
            return
        numbers = {k: float(v) for k, v in (logs or {}).items() if isinstance(v, int | float)}
        # the epoch's mean loss is not kept: the per-batch losses are
        values = {name: numbers[key] for key, name in batchlab_names(numbers).items()
                  if name != "train_loss"}
        if values:
            self.run.log(self.step, **values)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self.run is not None:
            self.run.finish()
            self.run = None

    # ------------------------------------------------------------------ failures
    def __enter__(self) -> BatchlabCallback:
        return self

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None,
                 tb: TracebackType | None) -> None:
        """A run still open here was cut off by ``err``: record it failed or interrupted."""
        if self.run is not None:
            self.run.__exit__(kind, err, tb)
            self.run = None
