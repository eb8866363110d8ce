"""The Python API on the user's own objects: ``import batchlab as bl``.

``bl.sweep`` trains a grid over a model (an ``nn.Module`` or a function returning one) and
data (``(x, y)`` tensors or numpy arrays, or a map-style ``Dataset``) with the CLI's store,
resume and skip rules; ``bl.lr_find``, ``bl.max_batch``, ``bl.throughput``,
``bl.noise_scale`` and ``bl.recommend`` run the CLI's probes on the same objects and return
the same result types. Every call is a thin layer: it checks the objects
(``batchlab.objects``), names them in a spec (``batchlab.apispec``) so run ids cover them, and
calls the library with ``RunInputs`` that build from the objects instead of the spec.

Runs train in this process by default (the objects need no pickling and a notebook's classes
work); ``workers=N`` sends them to N worker processes when they can be pickled and imported
there, and refuses with the reason otherwise (``apicheck.refuse_unsendable``).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchlab.apiresult import SweepResult
from batchlab.apistore import api_store_errors, check_store, store_path
from batchlab.errors import ExecutorError, SpecError

if TYPE_CHECKING:
    from batchlab.execute.dryrun import DryRun
    from batchlab.execute.sweep import PreparedSweep
    from batchlab.objects import ObjectInputs
    from batchlab.plan import RunSpec
    from batchlab.probes.lr_search import LrFindResult
    from batchlab.probes.max_batch import MaxBatchResult
    from batchlab.probes.noise_scale import NoiseScaleResult
    from batchlab.probes.recommend import Recommendation
    from batchlab.probes.throughput import ThroughputResult
    from batchlab.spec import RunConfig, Spec

DEFAULT_STORE = "batchlab.db"
# what to do after every run of a sweep failed (the CLI says it with its commands)
API_AGAIN = ("Fix that cause and call bl.sweep again (failed runs are trained again); "
             "bl.open('{store}').runs('{name}') lists each run's error.")


def _objects(model: Any, train: Any, val: Any, loss: Any, optimizer: Any) -> ObjectInputs:
    from batchlab.objects import ObjectInputs

    if model is None or train is None:
        raise SpecError("pass model= (an nn.Module or a function returning one) and "
                        "train= ((x, y) arrays or a Dataset).")
    return ObjectInputs.create(model, train, val, loss, optimizer)


def _spec(name: str, objects: ObjectInputs, grid: dict[str, list[Any]] | None,
          fields: dict[str, Any], optimizer: Any, repeats: int = 1, prune: str = "hopeless",
          call: str = "sweep") -> Spec:
    """The spec of an API call; an optimizer given by name is the ``train.optimizer`` field.
    ``call``: the API function, named in errors (``bl.lr_find(...)``)."""
    from batchlab.apispec import api_spec, refuse_optimizer_fields, refuse_split_fields

    if isinstance(optimizer, str):
        fields = {**fields, "optimizer": optimizer}
    elif optimizer is not None:
        refuse_optimizer_fields(fields, grid)
    if objects.data.val_x is not None:
        refuse_split_fields(fields, grid)
    return api_spec(name, data=objects.data_spec(), model=objects.model_spec(), grid=grid,
                    fields=fields, repeats=repeats, prune=prune, call=call)


def _resolve_auto_lr(spec: Spec, runs: list[RunSpec], objects: ObjectInputs,
                     store: Path, measure: bool = True) -> PreparedSweep:
    """The runs with ``lr = "auto"`` resolved on the objects (reusing LRs stored earlier, as
    ``batchlab sweep`` does), the probe results to store, and the notes the sweep warns: the
    data's (labels remapped), then one per LR found, as a spec's sweep prints them.
    ``measure=False`` (a dry run): an LR not stored earlier stays "auto"."""
    from batchlab.execute.sweep import PreparedSweep, known_auto_lrs
    from batchlab.probes.auto_lr import (
        AutoLrInterrupted,
        auto_lr_key,
        auto_lr_note,
        finished_kept,
        interrupted_note,
        resolve_auto_lr,
    )
    from batchlab.store import Store

    notes: list[str] = list(objects.data.notes)
    probes: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    if all(r.config.train.lr != "auto" for r in runs):
        return PreparedSweep(runs, notes=notes)
    known: dict[str, float] = {}
    if store.is_file():  # read only: bad input must not create a store
        with Store(store, create=False) as st:
            known = known_auto_lrs(st, spec.name)

    def keep(config: RunConfig, result: Any) -> None:
        probes.append(("lr_range", {**config.model_dump(mode="json"),
                                    "auto_lr_key": auto_lr_key(config)}, result.to_dict()))
        notes.append(auto_lr_note(config, result))

    try:
        with finished_kept(probes):
            resolved = resolve_auto_lr(runs, on_result=keep, known=known, measure=measure,
                                       inputs=objects.run_inputs())
    except AutoLrInterrupted as cut:  # the LRs found so far are kept: the next call reuses them
        with Store(store) as st:
            st.check_intact()
            st.add_probes(spec.name, cut.probes)
        _warn(f"interrupted: {interrupted_note(cut)}")
        raise
    return PreparedSweep(resolved, probes, notes=notes)


def dry_run_result(spec: Spec, prepared: PreparedSweep, store: Path, verbose: bool,
                   stacklevel: int = 4) -> DryRun:
    """``bl.sweep(..., dry_run=True)``'s answer on runs prepared as the sweep prepares them:
    what the sweep would do with each (``batchlab.execute.dryrun``), its notes warned as the
    sweep warns them (``stacklevel`` as ``_warn``'s: 4 from ``sweep``'s body), the
    plan printed as plain lines when ``verbose``. Reads the store, writes nothing."""
    from batchlab.execute.dryrun import dry_run_at
    from batchlab.lineprogress import plan_lines
    from batchlab.store.files import store_exists

    plan = dry_run_at(spec, prepared, store)
    for note in plan.notes:
        _warn(note, stacklevel)
    if verbose:
        where = str(store) if store_exists(store) else f"{store}, not created yet"
        print("\n".join(plan_lines(plan, where)), flush=True)
    return plan


def _warn(line: str, stacklevel: int = 4) -> None:
    """A sweep's notice (runs trained again, another model under this name) as a warning,
    which a notebook shows and a script can filter, at the caller's line of ``bl.sweep``:
    ``stacklevel`` counts this function, ``run_sweep`` and the frames between it and the user's
    call (4 from ``sweep``'s body)."""
    import warnings

    warnings.warn(line, UserWarning, stacklevel=stacklevel)


def sweep(name: str, train_fn: Any = None, *, model: Any = None, train: Any = None, val: Any = None,
          grid: dict[str, list[Any]] | None = None, store: str | Path = DEFAULT_STORE,
          loss: Any = None, optimizer: Any = None, repeats: int = 1, workers: int = 1,
          prune: str = "hopeless", verbose: bool = True, dry_run: bool = False,
          **train_fields: Any) -> SweepResult | DryRun:
    """Train every point of ``grid`` on ``model`` and ``train``; return the result.

    ``model``: an ``nn.Module`` (deep-copied for every run and re-initialised with the run's
    seed) or a function returning a fresh one, called with the keywords it declares among
    ``input_shape`` and ``num_classes`` (as a spec's ``model.name`` factory is); its forward
    returns one tensor. ``train``/``val``: ``(x, y)`` tensors or numpy arrays, or a map-style
    ``Dataset`` of (x, y) pairs; without ``val`` a ``val_fraction`` (0.2) of ``train`` is held
    out. Integer targets are classes (accuracy is recorded); float targets a regression (pass
    a ``loss``; the loss alone is recorded). ``grid``: spec field paths or short names
    (``batch_size``, ``lr``, ``schedule``, ``seed``, ``epochs``, ``optimizer``, ...) -> lists
    of values (or tuples, ranges, 1-D numpy arrays; numpy scalars read as Python numbers here
    and in keywords). ``store``: the store file's path. ``loss``: any ``loss(outputs,
    targets)`` returning the batch mean (default cross-entropy). ``optimizer``: a name or
    ``(params, lr) -> Optimizer`` (the schedule sets its LR every step). ``prune``:
    ``sweep.prune``, "hopeless" (default: collapsed runs stop early as ``pruned``), "halving"
    or "off". Other keywords set spec fields (``epochs=5``, ``momentum=0``, ``"data.limit"``
    via ``**{"data.limit": 500}``).
    ``workers``: runs trained at a time, in worker processes when > 1 (the objects must be
    module-level, picklable; refused with the reason when they are not). ``verbose``: print
    a line when the plan is known and one per run that ends (in a terminal and in a notebook
    alike); False prints nothing. ``dry_run``: train and write nothing; check the inputs as the
    sweep does and return a ``DryRun`` (``.runs``: each ``PlannedRun`` with what the sweep
    would do with it, ``.would``: "train", "skip (finished)", "resume from step 40", ...;
    ``.count()``), printed when ``verbose``, as ``batchlab sweep --dry-run``. An
    ``lr = "auto"`` no earlier sweep stored is not measured: it stays "auto".

    Same rules as ``batchlab sweep``: finished runs in ``store`` are skipped, unfinished ones
    resume from their checkpoints, and changed objects (architecture, data, loss, optimizer)
    give new run ids, so they train. Raises a BatchlabError naming what to fix on bad input.

    ``train_fn``: sweep your own training function instead (``train_fn(run)``, see
    ``batchlab.fnsweep``); then pass no model= or train=, and keys that are not train fields
    reach the function in ``run.config``.
    """
    store = store_path(store, f"batchlab.sweep('{name}')")
    # in the body, not a helper: a helper's frame would move the notices' warnings (stacklevel)
    # off the caller's line
    with api_store_errors():  # the store's errors say store=, not the CLI's --store
        check_store(store)  # before anything trains (an lr = "auto" range test, a function's runs)
        if train_fn is not None:
            if model is not None or train is not None or val is not None or loss is not None \
                    or optimizer is not None:
                raise SpecError("bl.sweep(name, train_fn, ...) sweeps your function, which builds its "
                                "own model and loads its own data: leave out model=, train=, val=, "
                                "loss= and optimizer= (or leave out train_fn for batchlab's loop).")
            from batchlab.fnsweep import sweep_function

            return sweep_function(name, train_fn, grid=grid, store=store, repeats=repeats,
                                  workers=workers, prune=prune, verbose=verbose, fields=train_fields,
                                  dry_run=dry_run)
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise SpecError(f"workers={workers!r} must be a whole number >= 1 (1: train in this process).")
        import torch

        from batchlab.apicheck import check_objects, preflight, refuse_unsendable
        from batchlab.execute.inline import InlineExecutor
        from batchlab.execute.local import LocalPoolExecutor
        from batchlab.execute.sweep import prepare_halving, run_sweep
        from batchlab.lineprogress import LineProgress
        from batchlab.mainguard import unguarded_message
        from batchlab.plan import plan_runs
        from batchlab.store import Store

        objects = _objects(model, train, val, loss, optimizer)
        spec = _spec(name, objects, grid, dict(train_fields), optimizer, repeats, prune)
        plan_notes: list[str] = []  # swept values some runs ignore, said before the others
        runs = plan_runs(spec, plan_notes)
        check_objects(runs[0].config, objects)  # before an lr = "auto" range test trains them
        if workers > 1:
            refuse_unsendable(workers, objects, model, loss, optimizer)
            if (why := unguarded_message("batchlab.sweep", workers)) is not None:
                raise SpecError(why)
        threads = torch.get_num_threads()  # train.threads applies to the runs, not to the session
        try:
            prepared = _resolve_auto_lr(spec, runs, objects, store, measure=not dry_run)
            schedule_notes = preflight(prepared.runs, objects)
            prepared = replace(prepared, notes=plan_notes + prepared.notes + schedule_notes)
            prepared = prepare_halving(spec, prepared, objects.run_inputs().load_data)
            if dry_run:
                return dry_run_result(spec, prepared, store, verbose)
            with Store(store) as st:
                progress = LineProgress(spec.name) if verbose else None
                executor = (InlineExecutor(inputs=objects.run_inputs()) if workers == 1 else
                            LocalPoolExecutor(workers, inputs=objects.run_inputs()))
                outcome = run_sweep(spec, st, executor,
                                    prepared=prepared, on_notice=_warn,
                                    on_plan=progress.on_plan if progress else None,
                                    on_event=progress.on_event if progress else None)
        finally:
            torch.set_num_threads(threads)
        if (why := outcome.all_failed_here(API_AGAIN.format(name=spec.name, store=store))) is not None:
            raise ExecutorError(why)  # nothing it trained worked: a table of failed rows would hide it
        return SweepResult(spec.name, store, outcome.planned, outcome.skipped, outcome.trained)


# ------------------------------------------------------------------------------- probes
# Each probe takes the objects sweep takes (model, train, val, loss, optimizer and spec fields
# by keyword), runs the CLI's probe on them and returns the same result type. With ``store``,
# the result is also stored as a probe of experiment ``experiment`` (the report shows it).


# the API function of each probe kind, as errors name it
PROBE_CALLS = {"lr_range": "lr_find", "max_batch": "max_batch", "throughput": "throughput",
               "noise_scale": "noise_scale", "recommend": "recommend"}


def _refuse_single_examples(config: RunConfig, objects: ObjectInputs, sizes: list[int]) -> None:
    """SpecError when a probe would train at batch size 1 a model whose BatchNorm trains, as
    a sweep's preflight refuses it: torch's raw ValueError ("Expected more than 1 value per
    channel") came out of bl.lr_find."""
    import torch

    from batchlab.spec_train import batchnorm_error
    from batchlab.train.accumulate import trains_batchnorm

    if 1 not in sizes:
        return
    with torch.random.fork_rng(devices=[]):
        net = objects.make_model()
    if trains_batchnorm(net):
        single = config.train.model_copy(update={"batch_size": 1, "accumulate": 1,
                                                 "micro_batch_size": None, "devices": 1})
        raise SpecError(f"{batchnorm_error(single, objects.model_name)}.")


def _probe(kind: str, run: Any, model: Any, train: Any, val: Any, loss: Any, optimizer: Any,
           store: str | Path | None, experiment: str, fields: dict[str, Any],
           batch_sizes: list[int] | None = None) -> Any:
    """Run probe ``run(config, inputs)`` on the checked objects; ``batch_sizes``: those it
    trains at, when it is given a list (default the config's batch size)."""
    from batchlab.apicheck import check_objects
    from batchlab.spec import RunConfig
    from batchlab.store import Store

    path = None if store is None else store_path(store, f"batchlab.{PROBE_CALLS[kind]}(...)")
    objects = _objects(model, train, val, loss, optimizer)
    spec = _spec(experiment, objects, None, dict(fields), optimizer, call=PROBE_CALLS[kind])
    config = RunConfig(data=spec.data, model=spec.model, train=spec.train)
    check_objects(config, objects)
    if kind == "lr_range":  # the others say it as a ProbeError, or start at 2 (max_batch)
        _refuse_single_examples(config, objects, batch_sizes or [config.train.batch_size])
    if path is not None:
        check_store(path)  # before the probe trains: a store refused after it loses the result
    result = run(config, objects.run_inputs())
    if path is not None:
        with api_store_errors(), Store(path) as st:
            st.add_probe(experiment, kind, config.model_dump(mode="json"), result.to_dict())
    return result


def _refuse_unread(fields: dict[str, Any], call: str, unread: dict[str, str]) -> None:
    """SpecError for a keyword the probe never reads (``unread``: name -> what to do instead;
    ``{value}`` in it is the value given): ``bl.throughput(batch_size=16)`` measured 8 to 2048
    and ``bl.lr_find(lr=0.1)`` searched as if it were not there, without a word."""
    for key, instead in unread.items():
        given = [k for k in (key, f"train.{key}") if k in fields]
        if given:
            raise SpecError(f"{call}: {given[0]}= is not read by this probe; "
                            + instead.format(value=fields[given[0]]))


def _batch_sizes(value: Any, call: str) -> list[int] | None:
    """A probe's ``batch_sizes``: None, one whole number (a list of one) or a sequence of
    them (list, tuple, range, numpy array) as a list of Python ints; SpecError otherwise."""
    if value is None:
        return None
    example = "e.g. batch_sizes=[16, 32, 64]"
    if isinstance(value, str | bytes):
        raise SpecError(f"{call}: batch_sizes={value!r} is a string; pass a list of whole "
                        f"numbers, {example}.")
    if hasattr(value, "tolist"):  # numpy arrays and scalars: Python numbers
        value = value.tolist()
    items = list(value) if isinstance(value, list | tuple | range) else [value]
    if not items or any(isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in items):
        raise SpecError(f"{call}: batch_sizes={value!r} must be whole numbers >= 1 (one, or a "
                        f"list of them), {example}.")
    return items


def lr_find(*, model: Any, train: Any, val: Any = None, loss: Any = None, optimizer: Any = None,
            batch_sizes: list[int] | None = None, strategy: str | None = None,
            repeats: int | None = None, start_lr: float = 1e-7, end_lr: float = 10.0,
            range_steps: int | None = None, budget: float | None = None,
            store: str | Path | None = None, experiment: str = "probes",
            **train_fields: Any) -> LrFindResult:
    """The LR suggestion on the objects: an ``LrFindResult`` (``suggested_lr``, per batch
    size with its ``confidence``, the α of lr* ∝ B^α). The default ``horizon`` strategy
    compares miniatures of the run the keywords describe (``epochs``/``steps``, ``schedule``),
    so give them as you will train; it runs no range test unless ``repeats`` asks for one.
    ``start_lr``/``end_lr``/``range_steps``: the range test's ramp (``range_steps`` default: a
    twentieth of the run within 20-100 for ``horizon``, else 100). ``budget`` (``horizon``
    only): the probe's share of the run's steps, at most 1 (default 0.5); more buys longer
    miniatures and a surer answer.
    ``batch_sizes``: a list of whole numbers, or one; default the ``batch_size`` keyword (32).
    ``store``: also store the result there (checked before the probe trains). Other keywords
    as in :func:`sweep`."""
    from batchlab.probes.lr_search import DEFAULT_STRATEGY
    from batchlab.probes.lr_search import lr_find as probe

    sizes = _batch_sizes(batch_sizes, "batchlab.lr_find")
    _refuse_unread(train_fields, "batchlab.lr_find", {"lr": (
        "it is the LR this probe looks for (it tries LRs around the optimizer's usual one); "
        "leave it out.")})
    return _probe("lr_range", lambda c, i: probe(
        c, batch_sizes=sizes, repeats=repeats, strategy=strategy or DEFAULT_STRATEGY,
        start_lr=start_lr, end_lr=end_lr, steps=range_steps, inputs=i, budget=budget),
        model, train, val, loss, optimizer, store, experiment, train_fields, sizes)


def max_batch(*, model: Any, train: Any, val: Any = None, loss: Any = None, optimizer: Any = None,
              memory_limit: int | str | None = None, margin: float = 0.1,
              max_batch: int | None = None, start: int = 1, store: str | Path | None = None,
              experiment: str = "probes", **train_fields: Any) -> MaxBatchResult:
    """The largest batch size that trains within memory: a ``MaxBatchResult``.
    ``memory_limit``: bytes or a size such as "4GiB" (default: the device's). ``start``: the
    first batch size tried (default 1; 2 at least on a model with BatchNorm layers)."""
    from batchlab.probes.max_batch import max_batch as probe
    from batchlab.probes.memory import parse_size

    limit = parse_size(memory_limit) if memory_limit is not None else None
    return _probe("max_batch", lambda c, i: probe(c, memory_limit=limit, margin=margin,
                                                   max_batch=max_batch, start=start, inputs=i),
                  model, train, val, loss, optimizer, store, experiment, train_fields)


def throughput(*, model: Any, train: Any, val: Any = None, loss: Any = None, optimizer: Any = None,
               batch_sizes: list[int] | None = None, store: str | Path | None = None,
               experiment: str = "probes", **train_fields: Any) -> ThroughputResult:
    """Samples/s and peak memory per batch size, and the knee: a ``ThroughputResult``.
    ``batch_sizes``: a list of whole numbers, or one (default: powers of two)."""
    from batchlab.probes.throughput import throughput_curve

    sizes = _batch_sizes(batch_sizes, "batchlab.throughput")
    _refuse_unread(train_fields, "batchlab.throughput", {"batch_size": (
        "it measures every size in batch_sizes= (default powers of two from 8 to 2048); pass "
        "batch_sizes=[{value}] to measure that one.")})
    return _probe("throughput", lambda c, i: throughput_curve(c, batch_sizes=sizes, inputs=i),
                  model, train, val, loss, optimizer, store, experiment, train_fields)


def noise_scale(*, model: Any, train: Any, val: Any = None, loss: Any = None,
                optimizer: Any = None, steps: int = 200, micro_batches: int | None = None,
                store: str | Path | None = None, experiment: str = "probes",
                **train_fields: Any) -> NoiseScaleResult:
    """The gradient noise scale B_simple over ``steps`` training steps at the ``batch_size``
    keyword: a ``NoiseScaleResult``."""
    from batchlab.probes.noise_scale import measure_noise_scale

    return _probe("noise_scale", lambda c, i: measure_noise_scale(
        c, steps=steps, micro_batches=micro_batches, inputs=i),
        model, train, val, loss, optimizer, store, experiment, train_fields)


def recommend(*, model: Any, train: Any, val: Any = None, loss: Any = None, optimizer: Any = None,
              batch_sizes: list[int] | None = None, memory_limit: int | str | None = None,
              margin: float = 0.1, noise_steps: int = 200, lr_repeats: int | None = None,
              store: str | Path | None = None, experiment: str = "probes",
              **train_fields: Any) -> Recommendation:
    """All the probes combined into a batch size, an LR and a warm-up, with the evidence: a
    ``Recommendation`` (``.explanation``: the reasoning, line by line). ``batch_sizes``: the
    candidates, a list of whole numbers (or one)."""
    from batchlab.probes.memory import parse_size
    from batchlab.probes.recommend import recommend as probe

    limit = parse_size(memory_limit) if memory_limit is not None else None
    sizes = _batch_sizes(batch_sizes, "batchlab.recommend")
    return _probe("recommend", lambda c, i: probe(
        c, batch_sizes=sizes, memory_limit=limit, margin=margin, noise_steps=noise_steps,
        lr_repeats=lr_repeats, inputs=i), model, train, val, loss, optimizer, store, experiment,
        train_fields)


__all__ = ["SweepResult", "lr_find", "max_batch", "noise_scale", "recommend", "sweep",
           "throughput"]
