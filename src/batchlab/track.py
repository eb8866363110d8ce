"""Record any training loop into a batchlab store: ``bl.track``.

    with bl.track("my-study", config={"batch_size": 64, "lr": 0.01, "n_train": 50_000}) as run:
        for step, (x, y) in enumerate(loader, 1):
            ...
            run.log(step, train_loss=loss, lr=opt.param_groups[0]["lr"])
        run.log(step, val_loss=vl, val_acc=va)

The run is stored exactly as a batchlab-trained run (config sections ``data``/``model``/
``train``, per-step metric rows, a summary), so ``ls``, ``show``, ``report``, ``compare``, the
diagnosis and the exports treat it the same. Rows go through the trainer's ``Recorder``: a
``train_loss`` may stay a device tensor until the next flush (no GPU sync per step), and rows
reach the store in batches. A non-finite ``train_loss`` ends the run as diverged (later rows
are dropped, as the trainer does); an exception or Ctrl-C inside the block marks it failed or
interrupted and propagates.

Tracked run ids start with ``t`` (planned ids are hex digests), so a sweep never mistakes a
tracked run for one of its own: it is never skipped, claimed or retrained by a sweep.
"""

from __future__ import annotations

import hashlib
import math
import platform
import sys
import traceback
import types
import uuid
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import torch

import batchlab
from batchlab.apispec import plain, user_config
from batchlab.apistore import api_store_errors, store_path
from batchlab.errors import SpecError
from batchlab.events import COMPLETED, DIVERGED, FAILED, INTERRUPTED, RunEnded, RunStarted
from batchlab.store import Store
from batchlab.store.claims import claim, new_owner
from batchlab.store.files import check_folder
from batchlab.store.tracked import add_tracked_run
from batchlab.train.recorder import Recorder
from batchlab.train.scaling import scaled_lr
from batchlab.train.watch import LayerWatch, first_examples

# config keys with a place in batchlab's run config; every other key is kept under "tracked"
TRAIN_KEYS = ("batch_size", "lr", "optimizer", "momentum", "weight_decay", "epochs", "steps",
              "seed", "scale_lr", "base_batch_size")
DATA_KEYS = {"data": "name", "n_train": "n_train", "n_val": "n_val", "num_classes": "classes"}
EVALUATIONS = ("val_loss", "val_acc")  # a log holding one of these is an evaluation
_POSITIVE_INT = ("batch_size", "n_train", "n_val", "steps_per_epoch", "epochs", "steps", "num_classes")
# the clocks a row carries, in the words of the analysis's time-to-target table
UNKNOWN_CLOCKS = ("steps", "epochs", "examples", "wall_time")


def tracked_run_id(experiment: str, name: str | None = None) -> str:
    """A run id no plan can produce (``t`` is not a hex digit). With ``name`` the id is stable,
    so tracking (or importing) the same named run again replaces it instead of adding one."""
    if name is None:
        return "t" + uuid.uuid4().hex[:11]
    return "t" + hashlib.sha256(f"{experiment}\0{name}".encode()).hexdigest()[:11]


def _check_config(config: dict[str, Any]) -> None:
    for key in _POSITIVE_INT:
        value = config.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise SpecError(f"track config '{key}' = {value!r} must be a positive integer "
                            "(or left out); fix the config passed to bl.track.")
    lr = config.get("lr")
    if lr is not None and (isinstance(lr, bool) or not isinstance(lr, int | float) or not lr >= 0):
        raise SpecError(f"track config 'lr' = {lr!r} must be a number >= 0 (or left out); "
                        "fix the config passed to bl.track.")


def run_config(config: dict[str, Any]) -> dict[str, Any]:
    """The stored config: the user's flat keys placed in batchlab's ``data``/``model``/``train``
    sections (what reports and the diagnosis read), the rest kept under ``tracked``."""
    _check_config(config)
    train: dict[str, Any] = {k: config[k] for k in TRAIN_KEYS if config.get(k) is not None}
    train.setdefault("scale_lr", "none")
    schedule = config.get("schedule", "constant")
    train["schedule"] = schedule if isinstance(schedule, dict) else {"name": str(schedule)}
    data = {field: config[key] for key, field in DATA_KEYS.items() if config.get(key) is not None}
    data.setdefault("name", "custom")
    model = {"name": str(config.get("model", "custom"))}
    used = {*TRAIN_KEYS, *DATA_KEYS, "schedule", "model"}
    extra = {k: v for k, v in config.items() if k not in used}
    return {"data": data, "model": model, "train": train, "tracked": extra}


class _Clock(Recorder):
    """The trainer's Recorder with epoch/examples from whatever the config gives: batch size
    and training-set size (exact, as the trainer counts), steps per epoch, or nothing (0)."""

    def __init__(self, run_id: str, sink: Any, config: dict[str, Any]) -> None:
        self.known_n = config.get("n_train")
        self.known_batch = config.get("batch_size")
        self.known_spe = config.get("steps_per_epoch")
        if self.known_n and self.known_batch:
            self.known_spe = math.ceil(self.known_n / self.known_batch)
        super().__init__(run_id, sink, self.known_n or 1, self.known_batch or 1, self.known_spe or 1)
        self.explicit: dict[int, tuple[float | None, int | None]] = {}
        self.wall: float | None = None  # an imported row's own time, used instead of the clock

    def elapsed(self) -> float:
        return super().elapsed() if self.wall is None else self.wall

    def position(self, step: int) -> tuple[float, int]:
        given_epoch, given_examples = self.explicit.get(step, (None, None))
        if self.known_n and self.known_batch:
            epoch, examples = super().position(step)  # exact, as the trainer counts
        else:
            epoch = step / self.known_spe if self.known_spe else 0.0
            examples = step * self.known_batch if self.known_batch else 0
        return (epoch if given_epoch is None else given_epoch,
                examples if given_examples is None else given_examples)

    def flush(self) -> int | None:
        bad = super().flush()
        self.explicit.clear()
        return bad


def _scalar(name: str, value: Any) -> torch.Tensor | float:
    if isinstance(value, float):  # the common cases first: this runs every step
        return value
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.detach() if value.requires_grad else value
        return value if value.dim() == 0 else value.reshape(())
    if hasattr(value, "item") and getattr(value, "size", 1) == 1:  # numpy scalars and 1-arrays
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpecError(f"run.log: '{name}' = {value!r} is not a number; log numbers or "
                        "one-element tensors (for example loss.detach(), not the batch of losses).")
    return float(value)


def _check_probe(model: torch.nn.Module, probe: Any) -> None:
    """SpecError now when ``model`` cannot take ``probe`` (one forward pass, in eval mode and
    under no_grad, so nothing it holds changes): an (x, y) batch given as the probe raised
    torch's raw TypeError from run.log, at the first step after an evaluation."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(probe)
    except Exception as err:
        raise SpecError(
            f"run.watch: the model fails on probe= ({type(err).__name__}: {err}); probe= is one "
            "batch of the model's input as its forward takes it: the inputs x of a batch, not "
            "the (x, y) pair a DataLoader gives (probe=xb), or leave it out for the first batch "
            "the model sees."
        ) from None
    finally:
        model.train(was_training)


class TrackedRun:
    """One tracked run. Use as a context manager (``with bl.track(...) as run``), or call
    ``start()`` and ``finish(status)`` yourself (as the Lightning and Keras integrations do)."""

    def __init__(self, experiment: str, config: dict[str, Any] | None = None,
                 store: str | Path | Store = "batchlab.db", *, name: str | None = None,
                 run_id: str | None = None, unknown: Iterable[str] = ()) -> None:
        """``run_id``: for an integration that must name the run before it starts (the
        Lightning logger's version folder); default ``tracked_run_id(experiment, name)``.

        ``unknown``: clocks of ``UNKNOWN_CLOCKS`` the rows only stand in for (an import of a
        log that holds no times, or no batch or training-set size). The summary lists them
        under ``unknown_clocks``, so the analysis draws no conclusion from them; with
        ``wall_time`` among them the rows' wall time is 0 rather than this process's clock,
        and the run has no wall time and no ``samples_per_s``."""
        if not isinstance(experiment, str) or not experiment.strip():
            raise SpecError(f"bl.track needs an experiment name (a non-empty string), got {experiment!r}.")
        if not isinstance(store, Store):
            store = store_path(store, "bl.track")  # a wrong type fails here, not inside the block
        if name is not None and not isinstance(name, str):
            raise SpecError(f"bl.track: name={name!r} must be a string (the run's stable name), "
                            "or left out for a new run each time.")
        self.experiment = experiment
        # numpy scalars (np.int64(64) from an array) read as the Python numbers they hold
        self.user_config = plain(user_config(config, "bl.track"))
        self.config = run_config(self.user_config)
        self.name = name
        self.id = run_id or tracked_run_id(experiment, name)
        self.unknown = sorted(set(unknown))
        if bad := [c for c in self.unknown if c not in UNKNOWN_CLOCKS]:
            raise SpecError(f"TrackedRun: unknown={bad} names no clock; use some of {UNKNOWN_CLOCKS}.")
        self._store_arg = store
        self.store: Store | None = None
        self._rec: _Clock | None = None
        self.diverged_at: int | None = None
        self.last_step = 0
        self.last_wall: float | None = None  # the latest wall_time given to log, if any
        self.status: str | None = None
        self._watch: LayerWatch | None = None
        self._probe: Any = None
        self._armed_at = 0  # the step of the evaluation the watch was armed at

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> TrackedRun:
        """Add the run to its experiment and mark it running."""
        if self._rec is not None or self.status is not None:
            # a second start would reset the run: its stored rows would be lost
            state = "is already running" if self._rec is not None else f"has ended ({self.status})"
            raise SpecError(f"tracked run {self.id} {state}: a TrackedRun records one run; call "
                            "bl.track(...) again for another.")
        if isinstance(self._store_arg, Store):
            self.store = self._store_arg
        else:
            with api_store_errors():  # the store's errors in bl.track's words (store=)
                check_folder(Path(self._store_arg))  # a mistyped folder is not made
                self.store = Store(self._store_arg)
        train = self.config["train"]
        point = {f"train.{k}": train[k] for k in ("batch_size", "lr") if k in train}
        add_tracked_run(self.store, self.experiment, self.id, self.config, point)
        # owned by this process, so a loop killed with kill -9 reads as interrupted, not running
        claim(self.store, self.id, new_owner())
        env = {"source": "track", "name": self.name, "batchlab": batchlab.__version__,
               "torch": torch.__version__, "python": platform.python_version(),
               "platform": platform.platform()}
        self.store.record(RunStarted(self.id, self._total_steps() or 0, 0, env))
        self._rec = _Clock(self.id, self.store.record, self.user_config)
        return self

    def log(self, step: int, *, epoch: float | None = None, examples: int | None = None,
            wall_time: float | None = None, **values: Any) -> None:
        """Record metric values taken after ``step`` optimizer updates.

        ``train_loss`` (with ``lr``) is the per-update loss; anything else (``val_loss``,
        ``val_acc``, ``train_acc``, your own names) is an evaluation value. ``epoch`` and
        ``examples`` override what the config lets batchlab derive; ``wall_time`` (seconds
        since the run began) replaces the clock, for values read from a log. After a non-finite
        ``train_loss`` the run has diverged and further values are ignored.
        """
        if self._rec is None:
            raise SpecError("run.log called outside its run: use it inside 'with bl.track(...) as run:' "
                            "(or after run.start() and before run.finish()).")
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise SpecError(f"run.log: step = {step!r} must be an integer >= 0 (optimizer updates done).")
        if self.diverged_at is not None:
            return
        scalars = {name: _scalar(name, v) for name, v in values.items()}
        if epoch is not None or examples is not None:
            self._rec.explicit[step] = (None if epoch is None else float(epoch),
                                        None if examples is None else int(examples))
        # without a clock of its own (an import of a log without times) a row's time is 0,
        # not the time this process took to read the log
        self._rec.wall = (0.0 if "wall_time" in self.unknown else
                          None if wall_time is None else float(wall_time))
        if wall_time is not None:
            self.last_wall = max(self.last_wall or 0.0, float(wall_time))
        if "train_loss" in scalars:
            loss = scalars.pop("train_loss")
            lr = scalars.pop("lr", None)
            if not isinstance(loss, torch.Tensor):
                loss = torch.tensor(loss, dtype=torch.float64)
            self._rec.log_step(step, loss, None if lr is None else float(lr))
        if scalars:
            self._rec.log_values(step, {k: float(v) for k, v in scalars.items()})
        self.last_step = max(self.last_step, step)
        self._watched(step, values)
        self._rec.wall = None
        if self._rec.due():
            self._flush()

    def watch(self, model: torch.nn.Module, probe: Any = None) -> None:
        """Record per-layer signals of ``model`` at each evaluation (``batchlab.train.watch``):
        each layer's gradient norm and update ratio (``layer/<name>/grad_norm``,
        ``.../update_ratio``) in the update after each logged evaluation (a ``val_loss`` or
        ``val_acc``), logged at the next step that logs a ``train_loss`` (the ratio per update
        when that is several updates later), and the fraction of dead units after its ReLU
        modules (``.../dead_frac``) on ``probe``: a fixed input batch (default: the first 256
        examples of the first batch the model sees after ``watch``). Gradients are read as
        backward produces them, so zeroing them anywhere in the loop is fine (under an fp16
        GradScaler they are the scaled gradients). Costs a weight copy and one probe forward
        pass per evaluation, and one here: a ``probe`` the model cannot take is a SpecError
        now, not at the first step after an evaluation."""
        if not isinstance(model, torch.nn.Module):
            raise SpecError(f"run.watch needs the torch.nn.Module being trained, got "
                            f"{type(model).__name__}; pass the model (not its parameters).")
        given = None if probe is None else first_examples(probe)
        if given is not None:
            _check_probe(model, given)
        if self._watch is not None:
            self._watch.disarm()
        self._watch = LayerWatch(model, hooks=True)
        self._probe = given
        if self._probe is None:
            def grab(module: torch.nn.Module, args: tuple[Any, ...]) -> None:
                if self._probe is None and args:
                    self._probe = first_examples(args[0])
                handle.remove()
            handle = model.register_forward_pre_hook(grab)

    def _watched(self, step: int, values: dict[str, Any]) -> None:
        """The watch's part of a log: arm at an evaluation, collect at the next training step."""
        watch, rec = self._watch, self._rec
        if watch is None or rec is None:
            return
        if watch.armed and "train_loss" in values and step > self._armed_at:
            rows = watch.collect(step - self._armed_at)
            if self._probe is not None:
                rows.update(watch.dead_fractions(lambda: watch.model(self._probe)))
            rec.log_values(step, rows)
        if any(name in values for name in EVALUATIONS):
            watch.arm()
            self._armed_at = step

    def _flush(self) -> None:
        assert self._rec is not None
        bad = self._rec.flush()
        if bad is not None and self.diverged_at is None:
            self.diverged_at = bad

    def finish(self, status: str = COMPLETED, error: str | None = None) -> None:
        """Flush what is buffered and record how the run ended (a diverged run stays diverged)."""
        if self._rec is None or self.store is None:
            return
        if self._watch is not None:
            self._watch.disarm()  # no gradient hooks left on the user's model
        self._flush()
        if self.diverged_at is not None and status == COMPLETED:
            status, error = DIVERGED, f"non-finite loss at step {self.diverged_at}"
        steps = self.diverged_at if self.diverged_at is not None else self.last_step
        wall: float | None = self._rec.elapsed() if self.last_wall is None else self.last_wall
        if "wall_time" in self.unknown:
            wall = None  # ls and show print '–', not how long reading the log took
        self.store.record(RunEnded(self.id, status, steps, wall, self._summary(steps, wall), error))
        self.status, self._rec = status, None
        if not isinstance(self._store_arg, Store):
            self.store.close()

    def __enter__(self) -> TrackedRun:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None,
                 tb: TracebackType | None) -> None:
        if err is None:
            self.finish(COMPLETED)
        elif isinstance(err, KeyboardInterrupt):
            self.finish(INTERRUPTED, "interrupted by the user (Ctrl-C)")
        else:
            self.finish(FAILED, "".join(traceback.format_exception_only(err)).strip())
        # returning None re-raises the exception

    # ------------------------------------------------------------------ summary
    def _total_steps(self) -> int | None:
        c = self.user_config
        if c.get("steps"):
            return int(c["steps"])
        spe = self._rec.known_spe if self._rec else None
        if spe is None and c.get("n_train") and c.get("batch_size"):
            spe = math.ceil(c["n_train"] / c["batch_size"])
        return int(c["epochs"]) * spe if c.get("epochs") and spe else None

    def _summary(self, steps: int, wall: float | None) -> dict[str, Any]:
        """The trainer's summary keys, from the rows now in the store; ``unknown_clocks``
        lists the clocks the rows do not really have (see ``unknown``), when any."""
        assert self.store is not None and self._rec is not None
        series = self.store.metrics(self.id)
        c, train = self.user_config, self.config["train"]
        out: dict[str, Any] = {"total_steps": self._total_steps() or steps,
                               "steps_per_epoch": self._rec.known_spe, "n_train": c.get("n_train"),
                               "n_val": c.get("n_val")}
        if c.get("num_classes"):
            out["num_classes"] = int(c["num_classes"])
        if "lr" in train and "batch_size" in train:
            out["effective_lr"] = scaled_lr(float(train["lr"]), int(train["batch_size"]),
                                            train["scale_lr"], int(train.get("base_batch_size", 32)))
        for name in ("train_loss", "train_acc", "val_loss", "val_acc"):
            if name in series and series[name].value.size:
                out[f"final_{name}"] = float(series[name].value[-1])
        acc = series.get("val_acc")
        if acc is not None and np.isfinite(acc.value).any():
            idx = int(np.nanargmax(np.where(np.isfinite(acc.value), acc.value, np.nan)))
            out.update(best_val_acc=float(acc.value[idx]), best_val_acc_step=int(acc.step[idx]),
                       best_val_acc_epoch=float(acc.epoch[idx]))
        loss = series.get("val_loss")
        if loss is not None and np.isfinite(loss.value).any():
            out["best_val_loss"] = float(loss.value[np.isfinite(loss.value)].min())
        if self.diverged_at is not None:
            out["diverged_at_step"] = self.diverged_at
        if self.unknown:
            out["unknown_clocks"] = list(self.unknown)
        if wall is not None and wall > 0 and "examples" not in self.unknown and self._rec.examples(steps):
            out["samples_per_s"] = self._rec.examples(steps) / wall
        if self._watch is not None:
            out.update(self._watch.summary())
        return out


def track(experiment: str, config: dict[str, Any] | None = None,
          store: str | Path | Store = "batchlab.db", *, name: str | None = None) -> TrackedRun:
    """Start recording one run of your own loop into ``store`` under ``experiment``.

    ``config``: flat keys; ``batch_size``, ``lr``, ``optimizer``, ``epochs``/``steps``,
    ``seed``, ``schedule``, ``model``, ``data``, ``n_train``, ``n_val`` and ``num_classes`` fill
    batchlab's run config (``batch_size`` with ``n_train``, or ``steps_per_epoch``, gives each
    row its epoch and examples seen); any other key is kept with the run; numpy scalars count
    as the Python numbers they hold. ``store``: the store file's path. ``name``: a stable
    name, so tracking the same name again replaces the run. Use with ``with``.
    """
    return TrackedRun(experiment, config, store, name=name)


class _CallableModule(types.ModuleType):
    """``batchlab.track`` is both this module and the function: whichever an import left bound
    on the package (``import batchlab.track`` binds the module), ``bl.track(...)`` works."""

    def __call__(self, *args: Any, **kwargs: Any) -> TrackedRun:
        return track(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
