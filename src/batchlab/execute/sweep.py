"""Drive a sweep: plan, check the inputs, record the experiment, train what is left.

Resume is by construction: run ids are hashes of the resolved config, so re-running the same
spec finds its runs in the store; completed and diverged runs are skipped, every other run
(pending, interrupted, failed, or left running by a driver that died) is trained again and
continues from its epoch checkpoint when it has one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from batchlab.errors import BatchlabError, ModelError
from batchlab.events import FINAL_STATUSES, Event, RunStarted
from batchlab.execute.base import Executor, RunTask
from batchlab.execute.datacache import DataCache
from batchlab.models import build_model
from batchlab.plan import RunSpec, plan_runs
from batchlab.spec import Spec
from batchlab.store import RunRecord, Store
from batchlab.train.scaling import scaled_lr
from batchlab.train.schedules import schedule_fn, steps_per_epoch


@dataclass(frozen=True)
class SweepOutcome:
    experiment: str
    planned: int
    skipped: int  # already final in the store before this call
    trained: int
    records: list[RunRecord]


def checkpoint_dir(store: Store) -> Path:
    return store.path.with_name(store.path.name + ".ckpt")


def preflight(runs: list[RunSpec], cache: DataCache) -> None:
    """Fail fast on bad input, before the store is touched: every data set loads, every model
    builds and every schedule is valid. Raises BatchlabError with the user-facing message."""
    checked: set[str] = set()
    for run in runs:
        cfg = run.config
        key = json.dumps([cfg.data.model_dump(mode="json"), cfg.model.model_dump(mode="json")])
        data = cache.load(cfg.data)
        if key not in checked:
            checked.add(key)
            try:
                build_model(cfg.model, data.input_shape, data.num_classes)
            except BatchlabError:
                raise
            except Exception as err:  # a zoo model that cannot take this input shape
                raise ModelError(
                    f"model '{cfg.model.name}' cannot be built for input shape "
                    f"{data.input_shape} with {data.num_classes} classes: {err}. "
                    "Pick a model that fits the data (see the model table in the README)."
                ) from None
        t = cfg.train
        spe = steps_per_epoch(len(data.train_y), t.batch_size)
        total = t.steps if t.steps is not None else (t.epochs or 1) * spe
        schedule_fn(t.schedule, scaled_lr(t.lr, t.batch_size, t.scale_lr, t.base_batch_size),
                    total, spe)


def prepare_sweep(spec: Spec, data_cache: DataCache | None = None) -> list[RunSpec]:
    """Plan the runs and check every input; raises BatchlabError before anything is stored."""
    runs = plan_runs(spec)
    preflight(runs, data_cache or DataCache())
    return runs


def run_sweep(
    spec: Spec,
    store: Store,
    executor: Executor,
    *,
    runs: list[RunSpec] | None = None,
    on_event: Callable[[Event], None] | None = None,
    on_plan: Callable[[list[RunSpec], set[str]], None] | None = None,
) -> SweepOutcome:
    """Train every run of ``spec`` not yet final in ``store``. ``runs``: the result of
    ``prepare_sweep`` when the caller already checked the inputs. Ctrl-C propagates after the
    store marks the runs that were cut off as interrupted (they resume next time)."""
    runs = runs if runs is not None else prepare_sweep(spec)
    store.add_experiment(spec.name, spec.model_dump(mode="json"), runs)
    status = {r.id: r for r in store.runs(spec.name)}
    todo = [r for r in runs if status[r.run_id].status not in FINAL_STATUSES]
    if on_plan:
        on_plan(runs, {r.run_id for r in todo})
    ckpt = checkpoint_dir(store)
    tasks = [RunTask(r.run_id, r.config, ckpt / f"{r.run_id}.pt", status[r.run_id].progress_step)
             for r in todo]
    started: set[str] = set()

    def deliver(event: Event) -> None:
        store.record(event)
        if isinstance(event, RunStarted):
            started.add(event.run_id)
        if on_event:
            on_event(event)

    try:
        executor.execute(tasks, deliver)
    finally:
        store.mark_interrupted(started)  # only those still RUNNING are changed
    return SweepOutcome(spec.name, len(runs), len(runs) - len(todo), len(todo),
                        store.runs(spec.name))
