"""The training loop: one run, read top to bottom.

data -> model -> optimizer + LR schedule -> loop over the batches of a batch source (random-
permutation slices of in-memory tensors, or a streaming DataLoader for data beyond memory:
``batchlab.data.batches``) -> per-step loss and LR, evaluations, epoch-end
checkpoints on a time budget (``checkpoint_timing``). A run is a pure function of its config
and seed; it never touches the store: it emits events to ``sink`` and the executor decides
where they go.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from typing import Any

import torch
import torch.nn.functional as F

from batchlab.data import pipeline
from batchlab.data.batches import Batch, batch_source
from batchlab.errortext import error_text
from batchlab.events import (
    COMPLETED,
    DIVERGED,
    FAILED,
    INTERRUPTED,
    PRUNED,
    Event,
    RunEnded,
    RunStarted,
)
from batchlab.fserrors import describe
from batchlab.spec import RunConfig
from batchlab.train.accumulate import has_batchnorm, trains_batchnorm
from batchlab.train.checkpoint import (
    CheckpointLocation,
    remove_checkpoint,
    resumable,
    save_checkpoint,
)
from batchlab.train.checkpoint_timing import CheckpointTimer, checkpoint_key
from batchlab.train.device import environment, resolve_device
from batchlab.train.distributed import SOLO, Replica, Solo
from batchlab.train.inputs import LossFn, RunInputs, has_accuracy
from batchlab.train.noise import noise_meter
from batchlab.train.optim import set_lr
from batchlab.train.precision import (
    Precision,
    as_channels_last,
    check_channels_last,
    make_precision,
    to_channels_last,
)
from batchlab.train.prune import PruneOrder, Pruner
from batchlab.train.recorder import Recorder
from batchlab.train.scaling import scaled_lr
from batchlab.train.schedules import run_length, schedule_fn, steps_per_epoch
from batchlab.train.watch import LayerWatch

EVAL_BATCH = 1024
TRAIN_EVAL_MAX = 2048  # train accuracy is measured on a fixed subset of at most this many examples
TRAIN_EVAL_MIN = 256  # ... and of at least this many (or all of a smaller training set)
TRAIN_EVAL_SHARE = 8  # ... and, above that floor, of at most 1/8 of the training set


def train_eval_size(n_train: int, n_val: int) -> int:
    """Size of the fixed train subset evaluated beside validation.

    As large as the validation set (the two accuracies are then about equally precise, which
    is what the train-vs-val gap needs), but at most 1/``TRAIN_EVAL_SHARE`` of the training
    set: a forward pass costs about a third of a training step, so the subset then costs at
    most ~4 % of an epoch's training. The share matters on small sets, where per-epoch
    evaluation is a large part of a run (on digits, 512 of 1,437 examples was ~5 % of a
    sweep's time). Never below ``TRAIN_EVAL_MIN`` (accuracy's standard error there is at most
    3 points, well inside the 10-point overfitting gap), never above ``TRAIN_EVAL_MAX``, never
    more than the training set.
    """
    by_cost = max(TRAIN_EVAL_MIN, n_train // TRAIN_EVAL_SHARE)
    return min(n_train, TRAIN_EVAL_MAX, by_cost, max(n_val, TRAIN_EVAL_MIN))


@torch.no_grad()
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
             loss_fn: LossFn = F.cross_entropy,
             precision: Precision | None = None) -> tuple[float, float | None]:
    """Mean loss and accuracy over (x, y), in eval mode (no dropout, BN running stats), under
    ``precision``'s autocast when given (evaluated as trained).

    The loss is ``loss_fn`` averaged over chunks weighted by their size; accuracy is None
    when the outputs are not class scores for integer labels (a regression, see
    ``has_accuracy``).
    """
    chunks = ((x[i : i + EVAL_BATCH], y[i : i + EVAL_BATCH]) for i in range(0, len(y), EVAL_BATCH))
    return evaluate_batches(model, chunks, loss_fn, x.device, precision)


@torch.no_grad()
def evaluate_batches(model: torch.nn.Module, batches: Iterable[Batch], loss_fn: LossFn,
                     device: torch.device, precision: Precision | None = None) -> tuple[float, float | None]:
    """``evaluate`` over (inputs, targets) batches on ``device`` (a batch source's). The model
    is evaluated in eval mode and left in the mode it was in."""
    was_training = model.training
    if was_training:  # a caller evaluating several sets switches once (a walk over every module)
        model.eval()
    loss_sum = torch.zeros((), device=device)
    correct: torch.Tensor | None = torch.zeros((), device=device)
    n = 0
    for inputs, target in batches:
        with precision.autocast() if precision is not None else nullcontext():
            outputs = model(inputs)
            loss_sum += loss_fn(outputs, target).detach().float() * len(target)
        n += len(target)
        if correct is not None and has_accuracy(outputs, target):
            correct += (outputs.argmax(dim=1) == target).sum()
        else:
            correct = None
    if was_training:
        model.train()
    n = max(n, 1)
    return loss_sum.item() / n, None if correct is None else correct.item() / n


def checkpoint_or_why(path: CheckpointLocation, state: dict[str, Any], doing: str) -> str | None:
    """Save a checkpoint; None when it worked, else the paragraph saying why the file system
    refused it (a full disk, a read-only folder). Other errors propagate."""
    try:
        save_checkpoint(path, state)
    except OSError as err:
        if (why := describe(err, str(path), doing)) is None:
            raise
        return why
    return None


def train_run(
    config: RunConfig,
    sink: Callable[[Event], None],
    *,
    checkpoint_path: CheckpointLocation | None = None,
    max_resume_step: int | None = None,
    load_data: Callable[..., pipeline.LoadedData] = pipeline.load_data,
    checkpoint_timer: CheckpointTimer | None = None,
    inputs: RunInputs | None = None,
    prune: PruneOrder | None = None,
    replica: Replica | Solo = SOLO,
) -> RunEnded:
    """Train one run to the end (or divergence/failure/Ctrl-C) and return how it ended.

    ``checkpoint_path``: where epoch checkpoints live; an existing one resumes the run when its
    step is <= ``max_resume_step`` (the last step the store holds every row for; None = any).
    Checkpoints are written at epoch ends on a time budget (``checkpoint_timer``, default
    ``CheckpointTimer`` keyed by the model and optimizer: once their cost is <= 2 % of the time).
    KeyboardInterrupt is re-raised after the run is reported as interrupted. ``inputs``: where
    the model, loss and optimizer come from (default: the config's, with ``load_data``: the
    pipeline ``data.pipeline`` picks).
    ``prune``: what the sweep asks (``batchlab.train.prune``; default: never stop early): a
    hopeless run ends ``pruned`` with the reason, a run at its halving rung ends ``interrupted``.
    ``replica``: this process's part in a run over several (``batchlab.train.distributed``;
    default: the only one). A follower loads the checkpoint but never writes one, records and
    evaluates nothing, and ends only at the run's last step: its launcher ends it with the
    leader's run.
    """
    inputs = inputs or RunInputs(load_data=load_data)
    run_id = config.run_id()
    t = config.train
    rec: Recorder | None = None
    step = 0

    def ended(status: str, summary: dict[str, Any], error: str | None = None,
              fatal: bool = False) -> RunEnded:
        wall = rec.elapsed() if rec else 0.0
        event = RunEnded(run_id, status, step, wall, summary, error, fatal)
        sink(event)
        return event

    try:
        if t.devices != replica.world:
            raise ValueError(f"train.devices = {t.devices} trains in {t.devices} processes: "
                             "start it with batchlab.execute.function.train_task (as every "
                             "executor does), not train_run")
        data = inputs.load_data(config.data)
        device = resolve_device(t.device)
        torch.manual_seed(t.seed)  # model init and dropout
        model = inputs.build_model(config.model, data).to(device)
        precision = make_precision(t.precision, device)  # autocast dtype, fp16's grad scaler
        if t.channels_last:
            check_channels_last(data.input_shape)
            model = to_channels_last(model)
        # trained: the DDP wrapper of a run over processes (after any change to the parameters'
        # layout: DDP's gradient buckets are views of them)
        model, trained = replica.wrap(model)
        micro = t.micro_batch()  # examples per forward/backward (< per-device batch: accumulation)
        base_lr = scaled_lr(t.numeric_lr(), t.batch_size, t.scale_lr, t.base_batch_size)
        optimizer = inputs.make_optimizer(t, model.parameters(), base_lr)
        batch = t.batch_size
        # BatchNorm that trains refuses a single example: every batch (and each process's
        # share) holds 2 at least, the epoch's last taking them from the batch before it
        min_batch = 2 * replica.world if trains_batchnorm(model) else 1
        batches = batch_source(data, config.data, batch, device, t.seed, train_eval_size,
                               min_batch)
        n_train = batches.n_train
        spe = steps_per_epoch(n_train, batch)
        total = run_length(t.steps, t.epochs, spe)
        lr_at = schedule_fn(t.schedule, base_lr, total, spe)
        eval_every = t.eval_every or spe
        order = torch.Generator().manual_seed(t.seed)  # batch order and augmentation
        noise = noise_meter(t)  # None unless train.measure_noise_scale
        pruner = Pruner(prune or PruneOrder(hopeless=False), data.num_classes or None)
        watch = LayerWatch(model) if t.watch else None  # per-layer signals at evaluations

        summary: dict[str, Any] = {
            "effective_lr": base_lr, "steps_per_epoch": spe, "total_steps": total,
            "n_train": n_train, "n_val": batches.n_val,
            "num_classes": data.num_classes or None,  # chance level for the diagnosis (1/C, ln C)
            "micro_batch_size": micro, "has_batchnorm": has_batchnorm(model),  # BN at small batches
            **replica.facts(),  # devices, backend, sync_batchnorm: BN statistics per process
        }
        if watch is not None:  # the layers' order, and those the spec froze on purpose
            summary.update(watch.summary(config.model.freeze != "none"))
        clock = 0.0
        state = resumable(checkpoint_path, run_id, max_resume_step) if checkpoint_path else None
        if state is not None:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            if precision.scaler is not None and state.get("scaler") is not None:
                precision.scaler.load_state_dict(state["scaler"])
            order.set_state(state["order_rng"])
            torch.set_rng_state(state["torch_rng"])
            if device.type == "cuda" and state.get("cuda_rng") is not None:
                torch.cuda.set_rng_state(state["cuda_rng"], device)
            step, clock, summary = state["step"], state["wall_time"], state["summary"]
            if noise is not None and state.get("noise_scale") is not None:
                noise = noise_meter(t, state["noise_scale"])
            pruner.restore(state.get("prune"))
        if not replica.leader:
            checkpoint_path = None  # loaded above; only the leader writes or removes it
        if noise is not None:
            noise.loss_fn = inputs.loss_fn  # the gradient noise of the loss being trained
        sink(RunStarted(run_id, total, step, {**environment(device), "data_pipeline": batches.kind}))
        # a follower never flushes on its own clock: it must not find a divergence (and end)
        # at a step where the leader has not looked
        rec = Recorder(run_id, sink, n_train, batch, spe, clock_offset=clock,
                       flush_seconds=1.0 if replica.leader else math.inf)
    except KeyboardInterrupt:
        ended(INTERRUPTED, {})
        raise
    except Exception as err:
        return ended(FAILED, {}, error_text(err, innermost=False))

    def run_eval() -> str | None:
        """Evaluate and record; the reason to prune the run here, or None. The fixed train
        subset measures train accuracy in eval mode, comparable to validation. Only the leader
        evaluates (a follower's reason would end it before the leader)."""
        nonlocal last_eval
        if not replica.leader:
            return None
        last_eval = step
        model.eval()
        val_loss, val_acc = evaluate_batches(model, batches.val_batches(EVAL_BATCH), inputs.loss_fn,
                                             device, precision)
        # the fixed train subset is the probe batch of the dead-unit count (no extra pass)
        with watch.dead_units_at(step >= total) if watch is not None else nullcontext({}) as dead:
            train_loss, train_acc = evaluate_batches(
                model, batches.train_eval_batches(EVAL_BATCH), inputs.loss_fn, device, precision)
        if watch is not None:
            rec.log_values(step, dead)
            if step < total:  # the update after this evaluation is measured (``collect`` below)
                watch.arm()
        model.train()
        rec.log_values(step, {"val_loss": val_loss, "train_eval_loss": train_loss})
        summary.update(final_val_loss=val_loss, final_train_loss=train_loss)
        if val_acc is None or train_acc is None:  # a regression: the loss alone is recorded
            summary.pop("best_val_acc", None)
        else:
            rec.log_values(step, {"val_acc": val_acc, "train_acc": train_acc})
            summary.update(final_val_acc=val_acc, final_train_acc=train_acc)
        # no best_val_acc before the first evaluation: a run that fails first has none (not -1)
        if val_acc is not None and val_acc > summary.get("best_val_acc", -math.inf):
            summary.update(best_val_acc=val_acc, best_val_acc_step=step,
                           best_val_acc_epoch=rec.epoch(step))
        if val_loss < summary.get("best_val_loss", math.inf):
            summary["best_val_loss"] = val_loss
        if noise is not None and noise.estimator.count:
            summary["noise_scale"] = noise.estimator.b_simple_ema()
            rec.log_values(step, {"noise_scale": summary["noise_scale"]})
        return pruner.observe(rec.epoch(step), val_acc, train_loss)

    def pruned(why: str) -> RunEnded:
        """End a hopeless run: its rows so far are kept, nothing will resume it."""
        rec.flush()
        summary["pruned_at_step"] = step
        if checkpoint_path is not None:
            remove_checkpoint(checkpoint_path)
        return ended(PRUNED, summary, why)

    last_eval = -1

    try:
        model.train()
        if step == 0 and (why := run_eval()) is not None:  # the curves start untrained
            return pruned(why)
        last_step, last_time = step, time.perf_counter()
        timer = checkpoint_timer or CheckpointTimer(key=checkpoint_key(model, t.optimizer))
        # forward/backward in micro-batches of `micro` under `precision`, then the update
        # (a run over processes: this process's share of every batch, gradients averaged)
        train_step = replica.make_step(trained, inputs.loss_fn, optimizer, batch, micro, precision)
        while step < total:
            for xb, yb in batches.epoch(order, limit=total - step):
                if t.channels_last:
                    xb = as_channels_last(xb)
                if noise is not None and step % t.noise_scale_every == 0:
                    noise.measure(model, xb, yb)  # a side computation: the step below is unchanged
                lr = lr_at(step)
                set_lr(optimizer, lr)
                loss = train_step(xb, yb)  # the full batch's mean loss, detached
                step += 1
                rec.log_step(step, loss, lr)
                if watch is not None and watch.armed:
                    rec.log_values(step, watch.collect())

                evaluate_now = step % eval_every == 0 or step == total
                flush_due = rec.due()  # the rows go to the store once a second (``Recorder``)
                if evaluate_now or flush_due:
                    now = time.perf_counter()
                    # checked before evaluating: a diverged run's summary and step count stop
                    # at the divergence, never at an evaluation of the blown-up weights
                    if (bad := rec.flush() if flush_due else rec.check()) is not None:
                        rec.flush()  # the rows up to the divergence
                        step = bad
                        summary["diverged_at_step"] = bad
                        if checkpoint_path is not None:  # final: nothing will resume it
                            remove_checkpoint(checkpoint_path)
                        return ended(DIVERGED, summary, f"non-finite loss at step {bad}")
                if evaluate_now:
                    summary["train_time"] = summary.get("train_time", 0.0) + now - last_time
                    examples = rec.examples(step) - rec.examples(last_step)
                    rec.log_values(step, {"samples_per_s": examples / max(now - last_time, 1e-9)})
                    why = run_eval()  # its rows go out with the next flush
                    last_step, last_time = step, time.perf_counter()
                    if why is not None:
                        return pruned(why)

            pause = step < total and pruner.pause_due(rec.examples(step))
            if pause and last_eval != step and (why := run_eval()) is not None:
                return pruned(why)  # halving ranks runs by the validation loss at the rung
            if checkpoint_path is not None and t.checkpoint and step < total and (
                    timer.due() or pause):
                timer.start()
                rec.flush()  # the store must hold every row up to the checkpoint's step
                if (why := checkpoint_or_why(checkpoint_path, {
                    "run_id": run_id, "step": step, "wall_time": rec.elapsed(),
                    "summary": summary, "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(), "order_rng": order.get_state(),
                    "scaler": precision.scaler.state_dict() if precision.scaler else None,
                    "torch_rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                    "noise_scale": noise.estimator.state() if noise is not None else None,
                    "prune": pruner.state(),
                }, f"writing the checkpoint of run {run_id}")) is not None:
                    # interrupted, not failed: it resumes from its previous checkpoint later
                    return ended(INTERRUPTED, summary, why, fatal=True)
                timer.written()
            if pause:
                rec.flush()
                return ended(INTERRUPTED, summary, pruner.pause_message(rec.examples(step)))
        rec.flush()
        summary["samples_per_s"] = rec.examples(step) / max(summary.get("train_time", 0.0), 1e-9)
        if noise is not None:
            summary.update(noise.summary(seed=t.seed))
        if checkpoint_path is not None:
            remove_checkpoint(checkpoint_path)
        return ended(COMPLETED, summary)
    except KeyboardInterrupt:
        rec.flush()
        ended(INTERRUPTED, summary, "interrupted by the user (Ctrl-C)")
        raise
    except Exception as err:
        rec.flush()
        return ended(FAILED, summary, error_text(err, innermost=False))
