"""The run a training function receives in a function sweep: ``train_fn(run)``.

    def train(run):
        model = Net(width=run.config["width"])
        run.watch(model)                           # per-layer signals at each evaluation
        opt = torch.optim.SGD(model.parameters(), lr=run.lr, momentum=0.9)
        sched = run.scheduler(opt)                 # batchlab's schedule, per optimizer step
        start, step = 0, 0
        if (state := run.restore()) is not None:   # an interrupted run continues here
            model.load_state_dict(state["model"]); opt.load_state_dict(state["opt"])
            sched.load_state_dict(state["sched"]); start, step = state["epoch"], state["step"]
        for epoch in range(start, run.config["epochs"]):
            for x, y in loader:
                ...; step += 1
                run.log(step, train_loss=loss, lr=sched.get_last_lr()[0])
            run.log(step, val_loss=vl, val_acc=va)
            run.save({"model": model.state_dict(), "opt": opt.state_dict(),
                      "sched": sched.state_dict(), "epoch": epoch + 1, "step": step})
            if run.should_stop():                  # the sweep's pruning
                return

``run.log`` is ``bl.track``'s (the same Recorder, names, epochs and examples seen: exact when
the config holds ``n_train``, the training set's size). An evaluation (a ``val_loss`` or
``val_acc``) is judged by the sweep's pruning there: ``should_stop()`` turns True for a
hopeless run (collapsed to chance, or never learned), at a successive-halving rung (examples
seen), and after a non-finite training loss. ``save(state)`` flushes the rows and writes
``state`` (anything ``torch.save`` takes) with the run's counters and RNG states; after a kill
the sweep resumes the run from it, the store dropping the rows logged after it, and
``restore()`` hands it back with the RNG states of the moment it was saved, so the resumed run
gives the numbers of an uninterrupted one. Log a step's values before saving it: a step at or
before the last save cannot be logged again (its rows would be lost on a resume).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from batchlab.errors import SpecError
from batchlab.events import COMPLETED, DIVERGED, FAILED, INTERRUPTED, PRUNED, RunEnded, RunStarted
from batchlab.execute.rng import rng_state, seed_everything, set_rng_state
from batchlab.spec import RunConfig, TrainSpec
from batchlab.track import TrackedRun, _Clock, _scalar
from batchlab.train.checkpoint import CheckpointLocation, remove_checkpoint
from batchlab.train.device import environment, resolve_device
from batchlab.train.loop import checkpoint_or_why
from batchlab.train.prune import PruneOrder, Pruner
from batchlab.train.scaling import scaled_lr
from batchlab.train.schedules import LRFn, run_length, schedule_fn, steps_per_epoch

EVALUATION = ("val_loss", "val_acc")  # a log holding one of these is an evaluation
KEPT = ("train_acc", "val_loss", "val_acc")  # their last values: final_*
CLOCK_KEYS = ("n_train", "steps_per_epoch", "num_classes")  # train.options keys batchlab reads
NOT_CONFIG = ("function", "options", "measure_noise_scale", "noise_scale_micro_batches",
              "noise_scale_every", "watch")


def _shown(value: Any) -> str:
    """A returned value as an error quotes it: its repr, cut to 60 characters, and its type."""
    shown = repr(value)
    return f"{shown if len(shown) <= 60 else shown[:57] + '...'} ({type(value).__name__})"


def _is_number(value: Any) -> bool:
    """Whether ``run.log`` takes ``value`` (a number or a one-element tensor or array)."""
    try:
        _scalar("value", value)
    except SpecError:
        return False
    return True


class CheckpointFailed(Exception):
    """``run.save`` could not write (a full disk, a read-only folder): the run stops, resumable."""


def flat_config(config: RunConfig) -> dict[str, Any]:
    """``run.config``: the train fields (``batch_size``, ``lr``, ``schedule`` as a dict,
    ``seed``, ``epochs``, ...) with the sweep's own keys (``train.options``) beside them."""
    train = {k: v for k, v in config.train.model_dump(mode="json").items() if k not in NOT_CONFIG}
    return {**train, **config.train.options}


def run_steps_per_epoch(options: dict[str, Any], batch_size: int) -> int | None:
    """Steps per epoch from ``n_train`` (exact, as the trainer counts) or ``steps_per_epoch``."""
    if options.get("n_train"):
        return steps_per_epoch(int(options["n_train"]), batch_size)
    return options.get("steps_per_epoch")


def schedule_length(train: TrainSpec) -> tuple[int, int] | str:
    """(steps of the whole run, steps per epoch) for ``train``'s schedule, or why they are not
    known: a schedule that counts epochs needs ``n_train`` or ``steps_per_epoch`` among the
    sweep's keys, and a run given in epochs needs them to count its steps."""
    s = train.schedule
    spe = run_steps_per_epoch(train.options, train.batch_size)
    by_epoch = (s.unit == "epoch" and s.name in ("step", "multistep", "exponential")) or (
        s.warmup > 0 and s.warmup_unit == "epoch")
    if spe is None and s.name != "constant" and (by_epoch or train.steps is None):
        return (f"schedule '{s.name}' counts {'epochs' if by_epoch else 'the run in epochs'}, "
                "whose length in steps batchlab does not know; give n_train (training examples) "
                "or steps_per_epoch as a key of the sweep" + ("" if by_epoch else ", or train.steps"))
    spe = spe or train.steps or 1  # unused by the schedule then: any positive length
    return run_length(train.steps, train.epochs, spe), spe


class BatchlabLR(torch.optim.lr_scheduler.LRScheduler):
    """Sets every parameter group's LR to batchlab's ``lr_at(step)``; step it after every
    optimizer update (the schedules count optimizer steps, not epochs)."""

    def __init__(self, optimizer: torch.optim.Optimizer, lr_at: LRFn, last_epoch: int = -1) -> None:
        self.lr_at = lr_at
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [self.lr_at(self.last_epoch)] * len(self.optimizer.param_groups)

    def state_dict(self) -> dict[str, Any]:
        # the schedule is a closure (not picklable) and comes back from the config anyway
        return {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "lr_at")}


class SweepRun(TrackedRun):
    """One run of a function sweep, as its training function sees it (see the module doc).

    A ``TrackedRun`` whose rows go to the sweep's event sink (the driver writes the store)
    rather than to a store of its own; ``config`` is the flat resolved point.
    """

    def __init__(self, config: RunConfig, sink: Any, *, checkpoint_path: CheckpointLocation | None = None,
                 resume: dict[str, Any] | None = None, prune: PruneOrder | None = None) -> None:
        t, options = config.train, config.train.options
        flat = flat_config(config)
        super().__init__("function sweep", {k: flat.get(k) for k in (
            "batch_size", "lr", "epochs", "steps", "seed", *CLOCK_KEYS)})
        self.id = self.run_id = config.run_id()
        self.config: dict[str, Any] = flat  # type: ignore[assignment]  # what train_fn reads
        self.spec = config
        self.lr = scaled_lr(t.numeric_lr(), t.batch_size, t.scale_lr, t.base_batch_size)
        self.steps_per_epoch = run_steps_per_epoch(options, t.batch_size)
        self.total_steps = (run_length(t.steps, t.epochs, self.steps_per_epoch)
                            if self.steps_per_epoch or t.steps else None)
        self._sink = sink
        self._path = checkpoint_path if t.checkpoint else None
        self._resume = resume
        self.resumed_step = resume["step"] if resume else 0
        self._floor = self.resumed_step if resume else -1  # steps at or before this are stored
        self._restored = False
        self._pruner = Pruner(prune or PruneOrder(hopeless=False), options.get("num_classes"))
        self._values: dict[str, Any] = dict(resume["summary"]) if resume else {}
        self._logged_at: dict[str, int] = {}  # each name logged by this call, at its latest step
        self._last_loss: Any = self._values.pop("final_train_loss", None)
        self._last_loss_step = self.resumed_step
        # the KEPT values logged by this call, (name, step) -> (value, epoch): the summary reads
        # them when the run ends, once it is known which steps a divergence left stored
        self._kept: dict[tuple[str, int], tuple[float, float]] = {}
        self._lr_at: LRFn | None = None
        self._schedule_steps = 0  # the schedule's length in steps, once lr_at built it
        self.stop_reason: str | None = None  # why pruning stopped the run (hopeless)
        self.paused_at: int | None = None  # examples seen at the halving rung it reached
        if resume:
            self._pruner.restore(resume.get("prune"))

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> SweepRun:
        t = self.spec.train
        env = {**environment(resolve_device(t.device)), "source": "function",
               "function": t.function}
        self._sink(RunStarted(self.id, self.total_steps or 0, self.resumed_step, env))
        self._rec = _Clock(self.id, self._sink, self.user_config)
        if self._resume:  # the run's clock goes on from the time it had spent
            self._rec._t0 -= self._resume["wall_time"]
        seed_everything(t.seed)
        return self

    def conclude(self, returned: Any = None) -> RunEnded:
        """End a run whose function returned ``returned``: failed when that is not something
        to record (see ``_take_returned``) or when nothing was logged at all (a run with no
        metric cannot be shown, compared or judged: the function must call ``run.log``),
        else diverged, pruned, paused at a rung or completed."""
        assert self._rec is not None
        if (why := self._take_returned(returned)) is not None:
            return self.end(FAILED, why)
        self._flush()
        if self.diverged_at is not None:
            return self.end(DIVERGED, f"non-finite loss at step {self.diverged_at}", final=True)
        if self.stop_reason is not None:
            self._values["pruned_at_step"] = self.last_step
            return self.end(PRUNED, self.stop_reason, final=True)
        if self.paused_at is not None:
            return self.end(INTERRUPTED, self._pruner.pause_message(self.paused_at))
        if not self._logged_at and self._resume is None:  # a resumed run's rows are stored
            return self.end(FAILED, (
                f"train function '{self.spec.train.function}' returned without logging a "
                "metric, so its run has nothing to show or compare. Call run.log(step, "
                "train_loss=loss, lr=lr) after each optimizer update and run.log(step, "
                "val_loss=..., val_acc=...) after each evaluation (step: optimizer updates "
                "done), or return a dict of the final values such as {'val_acc': 0.93}"
                + (f" (it returned {_shown(returned)}, which names no metric)." if returned is not None
                   else ".")))
        return self.end(COMPLETED, final=True)

    def end(self, status: str, error: str | None = None, *, final: bool = False,
            fatal: bool = False) -> RunEnded:
        """Flush and report how the run ended; ``final`` removes its checkpoint (nothing will
        resume it)."""
        assert self._rec is not None
        if self._watch is not None:
            self._watch.disarm()  # no gradient hooks left on the function's model
        self._flush()
        steps = self.diverged_at if self.diverged_at is not None else self.last_step
        wall = self._rec.elapsed()
        event = RunEnded(self.id, status, steps, wall, self._summary(steps, wall), error, fatal)
        self._sink(event)
        self.status, self._rec = status, None
        if final and self._path is not None:
            remove_checkpoint(self._path)
        return event

    def finish(self, status: str = COMPLETED, error: str | None = None) -> None:
        """Left to the sweep: a logger or callback inside ``train_fn`` does not end the run."""

    # ------------------------------------------------------------------ what train_fn calls
    def watch(self, model: torch.nn.Module, probe: Any = None) -> None:
        """``bl.track``'s ``run.watch`` (per-layer signals at each evaluation); does nothing
        when the sweep's spec sets ``train.watch = false``."""
        if self.spec.train.watch:
            super().watch(model, probe)

    def log(self, step: int, *, epoch: float | None = None, examples: int | None = None,
            wall_time: float | None = None, **values: Any) -> None:
        """``bl.track``'s ``run.log`` (see ``TrackedRun.log``); an evaluation is also judged
        by the sweep's pruning (``should_stop``)."""
        # a negative step is bl.track's error to say (it was called one "at or before the last
        # save" of a run that never saved)
        if isinstance(step, int) and not isinstance(step, bool) and 0 <= step <= self._floor:
            raise SpecError(
                f"run.log({step}, ...): step {step} is at or before the run's last save (step "
                f"{self._floor}), whose rows are stored already. Log a step's values before "
                "run.save(); after a resume, call run.restore() and continue after the saved step.")
        self._record(step, epoch, examples, wall_time, values)
        if self.diverged_at is None and self._rec is not None and any(n in values for n in EVALUATION):
            self._judge(step, values, epoch, examples)

    def _record(self, step: int, epoch: float | None, examples: int | None,
                wall_time: float | None, values: dict[str, Any]) -> None:
        """Log ``values`` (``TrackedRun.log``) and keep what the summary reads: the latest
        training loss, the final and best evaluation values."""
        # read below with float(): a tensor still in its graph (a returned dict's val_loss)
        # made torch warn from batchlab's line, and the last loss kept its graph alive
        values = {k: v.detach() if isinstance(v, torch.Tensor) else v for k, v in values.items()}
        super().log(step, epoch=epoch, examples=examples, wall_time=wall_time, **values)
        self._logged_at.update(dict.fromkeys(values, step))
        if self.diverged_at is not None or self._rec is None:
            return
        if "train_loss" in values and step >= self._last_loss_step:
            self._last_loss, self._last_loss_step = values["train_loss"], step
        at_epoch = self._rec.position(step)[0] if epoch is None else float(epoch)
        for name in KEPT:
            if name in values:  # a step logged twice keeps its last value, as the store does
                self._kept[name, step] = (float(values[name]), at_epoch)

    def _final_values(self) -> dict[str, Any]:
        """The summary's final and best values: the saved ones of a resumed run, then those
        logged since, in step order, up to a divergence. The rows logged after the non-finite
        loss are dropped (the Recorder finds it only at a flush, often after later values were
        logged), so their values are not the run's either: they were summarised as its final
        and best val acc while its stored rows ended at the divergence."""
        out = dict(self._values)
        last = math.inf if self.diverged_at is None else self.diverged_at
        for (name, step), (value, epoch) in sorted(self._kept.items(), key=lambda kv: kv[0][1]):
            if step > last:
                continue
            out[f"final_{name}"] = value
            if name == "val_acc" and math.isfinite(value) and value > out.get("best_val_acc", -math.inf):
                out.update(best_val_acc=value, best_val_acc_step=step, best_val_acc_epoch=epoch)
            if name == "val_loss" and value < out.get("best_val_loss", math.inf):
                out["best_val_loss"] = value
        loss = self._loss_value()
        if loss is not None and math.isfinite(loss) and self._last_loss_step <= last:
            out["final_train_loss"] = loss
        return out

    def _judge(self, step: int, values: dict[str, Any], epoch: float | None,
               examples: int | None) -> None:
        """The sweep's pruning on an evaluation: hopeless (stop) or a halving rung (pause)."""
        assert self._rec is not None
        at_epoch, at_examples = self._rec.position(step)
        at_epoch = at_epoch if epoch is None else float(epoch)
        at_examples = at_examples if examples is None else int(examples)
        acc = values.get("val_acc")
        train_loss = values.get("train_eval_loss", self._last_loss)
        why = self._pruner.observe(at_epoch, None if acc is None else float(acc),
                                   math.nan if train_loss is None else float(train_loss))
        if why is not None and self.stop_reason is None:
            self.stop_reason = why
        elif self._pruner.pause_due(at_examples):
            self.paused_at = at_examples

    def _take_returned(self, returned: Any) -> str | None:
        """Record what the function returned: the numbers of a returned dict (named by strings)
        are the run's final values (as a Ray Tune function's returned dict is its final result),
        logged at the step it names (``step``; default: the last step logged) as ``run.log``
        would, except the names already logged at that step and without the pruning's
        judgement (the training is over). Anything else (None, the model, an Optuna-style bare
        score, a dict's other entries) is not needed and is left alone: a run that logged
        metrics keeps them, a trained run is never failed for its return value; one that ends
        with no metric at all fails in ``conclude``, saying how to report them. Returns why the
        dict could not be recorded, else None."""
        if not isinstance(returned, Mapping):
            return None
        fn = self.spec.train.function
        values = {k: v for k, v in returned.items() if isinstance(k, str) and _is_number(v)}
        # default: the last step logged, by this call or (resumed with nothing left) before the save
        step = values.pop("step", max(self.last_step, self.resumed_step))
        place = {k: values.pop(k) for k in ("epoch", "examples", "wall_time") if k in values}
        values = {k: v for k, v in values.items() if self._logged_at.get(k) != step}
        if not values:
            return None
        try:
            self._record(step, place.get("epoch"), place.get("examples"), place.get("wall_time"),
                         values)
        except SpecError as err:
            return f"recording the dict train function '{fn}' returned: {err}"
        return None

    def should_stop(self) -> bool:
        """Whether the sweep wants this run to stop now: pruned as hopeless, paused at a
        successive-halving rung (save first: the run continues from its save if it is among
        the best), or diverged. Ask after each evaluation; returning then ends the run."""
        if self._rec is not None and self.diverged_at is None and self._rec.check() is not None:
            self._flush()  # the rows up to the non-finite loss; later values are ignored
        return self.diverged_at is not None or self.stop_reason is not None or self.paused_at is not None

    def save(self, state: Any) -> bool:
        """Flush the rows logged so far and write ``state`` as the run's checkpoint (atomically,
        replacing the previous one). False, and nothing written, when ``train.checkpoint`` is
        off or the run has diverged."""
        if self._rec is None:
            raise SpecError("run.save called after the run ended; save inside train_fn.")
        self._flush()
        if self._path is None or self.diverged_at is not None:
            return False
        why = checkpoint_or_why(self._path, {
            "run_id": self.id, "step": self.last_step, "wall_time": self._rec.elapsed(),
            "summary": self._final_values(),
            "prune": self._pruner.state(), "rng": rng_state(), "user": state,
        }, f"writing the checkpoint of run {self.id}")
        if why is not None:
            raise CheckpointFailed(why)
        self._floor = self.last_step
        return True

    def restore(self) -> Any:
        """The ``state`` of the run's last save when the sweep resumed it, else None. The RNG
        states (torch, numpy, random) are set back to the moment of that save."""
        if self._resume is None:
            return None
        if not self._restored:
            set_rng_state(self._resume["rng"])
            self._restored = True
        return self._resume["user"]

    def lr_at(self, step: int) -> float:
        """The LR of optimizer update ``step`` (0-based): the sweep's schedule from the
        scaled LR (``run.lr``) over the run's length (``epochs`` or ``steps``)."""
        if self._lr_at is None:
            length = schedule_length(self.spec.train)
            if isinstance(length, str):
                raise SpecError(f"run.lr_at: {length}.")
            self._schedule_steps, spe = length
            self._lr_at = schedule_fn(self.spec.train.schedule, self.lr, self._schedule_steps, spe)
        return self._lr_at(step)

    def scheduler(self, optimizer: torch.optim.Optimizer) -> BatchlabLR:
        """A torch LR scheduler following ``lr_at``: call ``step()`` after every optimizer
        update; ``state_dict``/``load_state_dict`` carry its position across a save."""
        self.lr_at(0)  # a schedule that cannot be built fails here, not at the first step
        last = self._schedule_steps - 1
        # stepped after the last update too (as torch's schedulers are): that LR is never used
        return BatchlabLR(optimizer, lambda step: self.lr_at(min(step, last)))

    # ------------------------------------------------------------------ summary
    def _loss_value(self) -> float | None:
        loss = self._last_loss
        return None if loss is None else float(loss.item() if hasattr(loss, "item") else loss)

    def _summary(self, steps: int, wall: float) -> dict[str, Any]:
        """The trainer's summary keys from the values logged (no store here: the driver has it)."""
        assert self._rec is not None
        options = self.spec.train.options
        out: dict[str, Any] = {**self._final_values(), "total_steps": self.total_steps or steps,
                               "steps_per_epoch": self.steps_per_epoch,
                               "n_train": options.get("n_train"), "effective_lr": self.lr}
        if options.get("num_classes"):
            out["num_classes"] = int(options["num_classes"])
        if self.diverged_at is not None:
            out["diverged_at_step"] = self.diverged_at
        if wall > 0 and self._rec.examples(steps):
            out["samples_per_s"] = self._rec.examples(steps) / wall
        if self._watch is not None:
            out.update(self._watch.summary())
        return out

