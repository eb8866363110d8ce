"""Drive a sweep: plan, check the inputs, record the experiment, train what is left.

Resume is by construction: run ids are hashes of the resolved config, so re-running the same
spec finds its runs in the store; completed and diverged runs are skipped, every other run
(pending, interrupted, failed, or left running by a driver that died) is trained again and
continues from its epoch checkpoint when it has one. Before anything is skipped or resumed,
the fingerprint of each run's data and model code is compared with the one stored with it
(``execute.freshness``): a run whose inputs changed is trained again from scratch.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from batchlab.data.augment import check_augment
from batchlab.data.dataset import output_width, task_words
from batchlab.data.pipeline import first_inputs
from batchlab.errors import BatchlabError, ModelError, SpecError
from batchlab.events import FAILED, FINAL_STATUSES, Event, RunEnded
from batchlab.execute.base import Executor, RunTask
from batchlab.execute.datacache import DataCache
from batchlab.execute.freshness import refresh
from batchlab.execute.function import check_importable, prepare_function_sweep
from batchlab.execute.halving import check_halving, halving_note, run_halving, train_sizes
from batchlab.execute.mixed import label_sections
from batchlab.fingerprint import Fingerprint, HashCaches
from batchlab.fserrors import DiskError, check_writable_folder, removed_if_empty
from batchlab.models import build_model
from batchlab.models.check import check_forward
from batchlab.plan import RunSpec, plan_runs
from batchlab.probes.auto_lr import auto_lr_key, auto_lr_note, finished_kept, resolve_auto_lr
from batchlab.spec import DataSpec, RunConfig, Spec
from batchlab.spec_train import batchnorm_error
from batchlab.store import RunRecord, Store
from batchlab.store.claims import STALE_AFTER_S, Heartbeat, claim, new_owner, release
from batchlab.store.lifecycle import checkpoint_dir as checkpoint_dir_of
from batchlab.train.accumulate import trains_batchnorm
from batchlab.train.device import resolve_device
from batchlab.train.precision import check_channels_last, make_precision
from batchlab.train.prune import PruneOrder
from batchlab.train.scaling import scaled_lr
from batchlab.train.schedules import run_length, schedule_fn, schedule_notes, steps_per_epoch

# what to do after every run failed, as the CLI says it
CLI_AGAIN = ("Fix that cause and run the same command again (failed runs are trained again); "
             "'batchlab show RUN' shows a run's error, and --workers 1 shows it in this process.")


@dataclass(frozen=True)
class SweepOutcome:
    experiment: str
    planned: int
    skipped: int  # already final in the store before this call
    trained: int  # runs this call claimed (or found finished by another sweep meanwhile)
    records: list[RunRecord]
    trained_ids: frozenset[str] = frozenset()  # the ids of those ``trained`` counts

    def all_failed(self, again: str = CLI_AGAIN) -> str | None:
        """When every run of the experiment that ended failed (none completed or diverged):
        one paragraph with their most common cause and what to do (``again``: how to retry
        and see a run's error, in the caller's words); None otherwise."""
        failed = [r for r in self.records if r.status == FAILED]
        if not failed or any(r.status in FINAL_STATUSES for r in self.records):
            return None
        cause, same = _common_cause(failed)
        if len(failed) == 1:
            return f"the only run of '{self.experiment}' failed: {cause}. {again}"
        return f"all {len(failed)} runs of '{self.experiment}' failed {same}: {cause}. {again}"

    def failed_here(self, again: str = CLI_AGAIN) -> str | None:
        """When a run this call trained failed: ``all_failed``'s paragraph when no run of the
        experiment ended well, else one paragraph counting the failed runs among those this
        call trained, with their most common cause and what to do; None when none failed.
        The CLI's sweeps exit 1 with it: other runs of the experiment that completed (earlier,
        or in this call) must not hide that what it just trained failed."""
        failed = [r for r in self.records if r.status == FAILED and r.id in self.trained_ids]
        if not failed:
            return None
        if (why := self.all_failed(again)) is not None:
            return why
        cause, same = _common_cause(failed)
        if len(self.trained_ids) == 1:
            return f"the run this command trained ({failed[0].id}) failed: {cause}. {again}"
        share = f" {same}" if len(failed) > 1 else ""
        return (f"{len(failed)} of the {len(self.trained_ids)} runs this command trained "
                f"failed{share}: {cause}. The other runs are stored. {again}")

    def all_failed_here(self, again: str) -> str | None:
        """The Python API's error: ``all_failed``'s paragraph, or, when the experiment has
        other runs that ended well (an earlier call, another model), one for the runs this
        call trained when every one of them failed; None when one of them ended well. A call
        whose every run failed beside an earlier model's runs returned as a success."""
        if (why := self.all_failed(again)) is not None:
            return why
        here = [r for r in self.records if r.id in self.trained_ids]
        if not here or any(r.status != FAILED for r in here):
            return None
        cause, same = _common_cause(here)
        if len(here) == 1:
            return f"the only run this call trained ({here[0].id}) failed: {cause}. {again}"
        return (f"all {len(here)} runs this call trained failed {same}: {cause}. The "
                f"experiment's other runs are stored. {again}")


def _common_cause(failed: list[RunRecord]) -> tuple[str, str]:
    """The most common last line of ``failed`` runs' errors (no final full stop), and how many
    share it, in words ("with the same error" or "(2 of them with this error)")."""
    causes = Counter((r.error or "no error text").strip().splitlines()[-1] for r in failed)
    cause, count = causes.most_common(1)[0]
    same = "with the same error" if len(causes) == 1 else f"({count} of them with this error)"
    return cause.rstrip("."), same


def checkpoint_dir(store: Store) -> Path:
    return checkpoint_dir_of(store.path)


def preflight(runs: list[RunSpec], cache: DataCache) -> list[str]:
    """Fail fast on bad input, before the store is touched: every data set loads, every model
    builds and maps a batch of the data to one logit per class, every batch fits in the
    training set and every schedule is valid. Raises BatchlabError with the user-facing message;
    returns the notes loading the data made (e.g. labels remapped), each once."""
    batchnorm: dict[str, bool] = {}  # by model and data: whether its BatchNorm trains
    too_big: dict[int, int] = {}  # batch size -> training examples, for batches that do not fit
    notes: list[str] = []
    for run in runs:
        cfg = run.config
        key = json.dumps([cfg.data.model_dump(mode="json"), cfg.model.model_dump(mode="json")])
        data = cache.load(cfg.data)
        notes += [n for n in data.notes if n not in notes]
        if key not in batchnorm:
            width = output_width(data.num_classes, data.train_y)  # classes, or regression targets
            try:
                model = build_model(cfg.model, data.input_shape, width)
            except BatchlabError:
                raise
            except Exception as err:  # a zoo model that cannot take this input shape
                raise ModelError(
                    f"model '{cfg.model.name}' cannot be built for input shape "
                    f"{data.input_shape} with {task_words(data.num_classes, data.train_y)}: "
                    f"{err}. Pick a model that fits the data (see the model table in docs/spec.md)."
                ) from None
            check_forward(model, first_inputs(data, 2), width, cfg.model.name,
                          regression=not data.num_classes)
            batchnorm[key] = trains_batchnorm(model)
        t = cfg.train
        if batchnorm[key] and (why := batchnorm_error(t, cfg.model.name)) is not None:
            raise SpecError(why + ".")
        if t.device == "cuda" and not torch.cuda.is_available():
            raise SpecError("train.device = 'cuda' but this machine has no CUDA device; "
                            "use device = 'auto' (CUDA when present) or 'cpu'.")
        if t.channels_last:
            check_channels_last(data.input_shape)  # SpecError: the data are not images
        if (note := check_augment(cfg.data.augment, data.input_shape)) and note not in notes:
            notes.append(note)  # a SpecError when the data cannot take the augmentation
        make_precision(t.precision, resolve_device(t.device))  # SpecError: no such autocast here
        n_train = len(data.train_y)
        if t.batch_size > n_train:
            too_big[t.batch_size] = n_train
            continue
        spe = steps_per_epoch(n_train, t.batch_size)
        total = run_length(t.steps, t.epochs, spe)
        if t.lr != "auto":  # left unmeasured by a dry run only: its LR's checks wait for the LR
            schedule_fn(t.schedule, scaled_lr(t.numeric_lr(), t.batch_size, t.scale_lr,
                                              t.base_batch_size), total, spe)
        notes += [n for n in schedule_notes(t.schedule, total, spe) if n not in notes]
    refuse_batches_larger_than_data(too_big)
    return notes


def refuse_batches_larger_than_data(too_big: dict[int, int],
                                    more: str = "data.limit / data.size / data.val_fraction") -> None:
    """SpecError naming every batch size larger than its training set (``too_big``: batch
    size -> training examples); nothing when it is empty. Refused, as the probes do: a batch
    larger than the data would silently train full-batch, and two such sizes would be the
    same run under two names. ``more``: how the caller gets more training examples."""
    if not too_big:
        return
    sizes = ", ".join(map(str, sorted(too_big)))
    n = min(too_big.values())
    raise SpecError(
        f"train.batch_size {sizes} is larger than the training set ({n} examples after the "
        f"validation split); use batch sizes of at most {n} (full batch) or more data ({more})."
    )


@dataclass(frozen=True)
class PreparedSweep:
    """Planned, checked runs (``lr = "auto"`` resolved), the probe results that resolved
    them, as (kind, config, result) to store once the store is opened, and the fingerprint of
    each run's data and model code (by run id)."""

    runs: list[RunSpec]
    probes: list[tuple[str, dict[str, Any], dict[str, Any]]] = field(default_factory=list)
    fingerprints: dict[str, Fingerprint] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what loading the data found (say it)
    n_train: dict[str, int] = field(default_factory=dict)  # training examples, by run id


def check_workers_can_import(runs: list[RunSpec], executor: Executor | None) -> None:
    """A factory defined in ``__main__`` (a notebook, ``python -c``) cannot be imported by
    worker processes, which have a ``__main__`` of their own: refuse before any run starts.
    ``executor`` None: one not built here (a dry run's Ray cluster), never in process."""
    if getattr(executor, "in_process", False):
        return
    for run in runs:
        if run.config.train.function is not None:
            check_importable(run.config.train.function)
            continue
        name = run.config.model.name
        if name.partition(":")[0].strip() == "__main__":
            raise ModelError(
                f"model.name = '{name}' is a factory defined in the main program (a notebook, "
                "'python -c' or the script you ran), which worker processes cannot import: "
                "each has a main program of its own. Move the factory into a module file "
                f"(for example mymodels.py beside your notebook, then model.name = "
                f"'mymodels:{name.partition(':')[2].strip()}'), or train in this process with "
                "one worker (workers=1, --workers 1)."
            )


def known_auto_lrs(store: Store | None, experiment: str) -> dict[str, float]:
    """LR range-test suggestions an earlier call stored for this experiment, by auto_lr_key.

    A suggestion measured on data whose files have changed since is left out (its probe
    stored the data fingerprint), so ``lr = "auto"`` is measured again on the new data."""
    known: dict[str, float] = {}
    hashes = HashCaches()
    for probe in store.probes(experiment, "lr_range") if store is not None else []:
        lr, key = probe.result.get("suggested_lr"), probe.config.get("auto_lr_key")
        stored = probe.config.get("data_fingerprint")
        if lr is None or not key:
            continue
        if stored is not None and hashes.data(DataSpec.model_construct(**probe.config["data"])) != stored:
            continue  # model_construct: a probe stored by another batchlab version still reads
        known[key] = lr
    hashes.save()
    return known


def prepare_sweep(spec: Spec, data_cache: DataCache | None = None,
                  known_lrs: dict[str, float] | None = None, *, measure_lr: bool = True) -> PreparedSweep:
    """Plan the runs, resolve ``lr = "auto"`` by the LR range test (unless ``known_lrs`` has
    the answer; ``measure_lr=False``: left "auto", nothing trains) and check every input;
    raises BatchlabError before anything is stored.
    A spec with ``train.function`` is a function sweep (``batchlab.execute.function``)."""
    if spec.train.function is not None:
        return prepare_function_sweep(spec)
    probes: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    hashes = HashCaches()
    notes: list[str] = []  # the plan's first: swept values some runs ignore; then the LRs found

    def keep(config: RunConfig, result: Any) -> None:
        probes.append(("lr_range", {**config.model_dump(mode="json"), "auto_lr_key": auto_lr_key(config),
                                    "data_fingerprint": hashes.data(config.data)}, result.to_dict()))
        notes.append(auto_lr_note(config, result))

    with finished_kept(probes):  # a Ctrl-C keeps the LRs found so far (AutoLrInterrupted)
        runs = resolve_auto_lr(plan_runs(spec, notes), on_result=keep, known=known_lrs, measure=measure_lr)
    cache = data_cache or DataCache()
    notes += preflight(runs, cache)
    check_halving(spec, runs)
    prints = {run.run_id: hashes.run(run.config) for run in runs}
    hashes.save()
    n_train = {run.run_id: len(cache.load(run.config.data).train_y) for run in runs}
    if (note := halving_note(spec, runs, n_train)) is not None:
        notes.append(note)
    return PreparedSweep(runs, probes, prints, notes, n_train)


def prepare_halving(spec: Spec, prepared: PreparedSweep,
                    load_data: Callable[[DataSpec], Any]) -> PreparedSweep:
    """``prepared`` made without ``prepare_sweep`` (the Python API's) with what that adds for
    ``sweep.prune = "halving"``: refused (SpecError) where runs write no checkpoint, and given
    every run's training set size (read with ``load_data``, the loader its runs train with)
    and the note saying when halving halves nothing. Unchanged for any other prune."""
    check_halving(spec, prepared.runs)
    if spec.sweep.prune != "halving":
        return prepared
    n_train = train_sizes(prepared.runs, prepared.n_train, load_data)
    note = halving_note(spec, prepared.runs, n_train)
    return replace(prepared, n_train=n_train, notes=prepared.notes + ([note] if note else []))


def executor_data(executor: Executor) -> Callable[[DataSpec], Any]:
    """How ``executor``'s runs load their data: its ``RunInputs`` (the Python API's objects,
    which only they reach), else its data cache, else the spec's own loader."""
    inputs = getattr(executor, "inputs", None)
    if inputs is not None:
        return inputs.load_data
    return (getattr(executor, "data_cache", None) or DataCache()).load


def run_sweep(
    spec: Spec,
    store: Store,
    executor: Executor,
    *,
    prepared: PreparedSweep | None = None,
    on_event: Callable[[Event], None] | None = None,
    on_plan: Callable[[list[RunSpec], set[str]], None] | None = None,
    on_notice: Callable[[str], None] | None = None,
    rerun: bool = False,
    stale_after: float = STALE_AFTER_S,
    poll_every: float = 1.0,
) -> SweepOutcome:
    """Train every run of ``spec`` not yet final in ``store``; return when all are final or
    were attempted by this call.

    ``prepared``: the result of ``prepare_sweep`` when the caller already checked the inputs.
    Each run is claimed atomically just before it is handed to the executor, so several sweeps
    on one store share the work; runs another live sweep holds are waited for (and taken over
    if its heartbeat goes stale). Ctrl-C propagates after this sweep's unfinished runs are
    marked interrupted (they resume from their checkpoints next time).

    A stored run whose data or model code changed since it was trained (its fingerprint
    differs) is trained again from scratch, and so is every run with ``rerun``;
    ``on_notice`` gets one line per such reason, and each note ``prepare_sweep`` made.
    """
    # an in-process executor's data cache serves the checks too: the data loads once
    prepared = prepared or prepare_sweep(spec, getattr(executor, "data_cache", None),
                                         known_lrs=known_auto_lrs(store, spec.name))
    runs = prepared.runs
    ckpt = checkpoint_dir(store)
    # the checkpoint folder is made up front (a read-only folder fails here, not per run);
    # whatever ends the sweep, even a damaged store's first query, removes it when empty
    with removed_if_empty(ckpt):
        if any(r.config.train.checkpoint for r in runs):
            check_writable_folder(ckpt, "writing the runs' checkpoints",
                                  "run the same command again (or set train.checkpoint = false)")
        check_workers_can_import(runs, executor)
        store.check_intact()  # before any write: a damaged store is refused, not added to
        runs, mixed = label_sections(store, spec.name, runs)  # another model under this name: say so
        store.add_experiment(spec.name, spec.model_dump(mode="json"), runs)
        store.add_probes(spec.name, prepared.probes)
        status = {r.id: r.status for r in store.runs(spec.name)}
        notices = (prepared.notes + mixed
                   + refresh(store, runs, prepared.fingerprints, status, rerun=rerun))
        if notices:
            status = {r.id: r.status for r in store.runs(spec.name)}
        for line in notices if on_notice else []:
            on_notice(line)
        todo = [r for r in runs if status[r.run_id] not in FINAL_STATUSES]
        if on_plan:
            on_plan(runs, {r.run_id for r in todo})
        owner = new_owner()
        attempted: set[str] = set()  # claimed (or found final) by this call: never tried twice
        busy: list[RunSpec] = []
        order = PruneOrder(hopeless=spec.sweep.prune != "off")

        def next_task() -> RunTask | None:
            """Claim the next run to train; None when none is left for this sweep right now."""
            while queue:
                run = queue.pop(0)
                outcome = claim(store, run.run_id, owner, stale_after)
                if outcome == "busy":
                    busy.append(run)
                    continue
                attempted.add(run.run_id)
                if outcome == "claimed":
                    progress = store.run(run.run_id).progress_step
                    return RunTask(run.run_id, run.config, ckpt / f"{run.run_id}.pt", progress, order)
            return None

        def deliver(event: Event) -> None:
            store.record(event)  # a full disk here raises DiskError: the sweep stops
            if on_event:
                on_event(event)
            if isinstance(event, RunEnded) and event.fatal:
                # a full disk or read-only folder would stop every other run too: stop now
                raise DiskError(event.error or "a file could not be written")

        def train(these: list[RunSpec], prune: PruneOrder) -> None:
            """Train ``these`` (claiming each) with ``prune``, waiting for runs another sweep holds."""
            nonlocal queue, order
            queue, order = list(these), prune
            tried: set[str] = set()
            while True:
                executor.execute(next_task, deliver)
                waiting, busy[:] = list(busy), []
                tried |= attempted
                if not waiting:
                    break
                # runs held by another sweep: wait until they end or their claim goes stale
                time.sleep(poll_every)
                queue = [r for r in waiting if r.run_id not in tried]
            attempted.clear()  # a halving rung trains a run again at the next rung
            trained.update(tried)

        queue: list[RunSpec] = []
        trained: set[str] = set()
        try:
            with Heartbeat(store.path, owner):
                if spec.sweep.prune == "halving":
                    # sizes prepare_sweep did not give (a Python API sweep's) are read as the
                    # executor reads its data: arrays passed in are not reachable by the spec
                    sizes = train_sizes(runs, prepared.n_train, executor_data(executor))
                    run_halving(runs, store, train, spec.sweep.halving_eta, sizes)
                else:
                    train(todo, order)
        finally:
            try:
                release(store, owner)
            except (DiskError, OSError):
                pass  # a full disk: our claims are taken over once this process is gone
        return SweepOutcome(spec.name, len(runs), len(runs) - len(todo), len(trained),
                            store.runs(spec.name), frozenset(trained))
