"""Function sweeps: every run calls the user's own training function (``train.function``).

As Optuna's ``study.optimize(objective)`` or a Ray Tune function trainable: the sweep plans
the runs (batch size x LR x schedule x seed x the user's own keys in ``train.options``), claims
each in the store, and instead of batchlab's loop calls ``train_fn(run)`` with a
:class:`~batchlab.execute.handle.SweepRun`. Skip and resume, pruning (hopeless, successive
halving at equal examples seen), worker processes and Ray work as for the built-in loop:
executors call :func:`train_task`, which picks the loop or the function by the run's config.

The function is ``"module:function"``, imported as ``model.name`` factories are (from the
current folder, reloaded when its file changed); the run's fingerprint holds its module's
source, so an edited function retrains the runs (``batchlab.execute.freshness``).
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from batchlab.errors import BatchlabError, SpecError
from batchlab.errortext import error_text
from batchlab.events import FAILED, INTERRUPTED, Event, RunEnded
from batchlab.execute.halving import check_halving, halving_note
from batchlab.execute.handle import CheckpointFailed, SweepRun, run_steps_per_epoch, schedule_length
from batchlab.fingerprint import Fingerprint, HashCaches
from batchlab.models.factory import _current
from batchlab.plan import RunSpec, plan_runs
from batchlab.spec import RunConfig, Spec
from batchlab.train.checkpoint import CheckpointLocation, resumable
from batchlab.train.loop import train_run
from batchlab.train.prune import PruneOrder
from batchlab.train.schedules import schedule_fn, schedule_notes

if TYPE_CHECKING:
    from batchlab.execute.sweep import PreparedSweep

TrainFn = Callable[[SweepRun], Any]
POSITIVE_OPTIONS = ("n_train", "steps_per_epoch", "num_classes")


def resolve_function(name: str) -> TrainFn:
    """Import ``"module:function"`` (a dotted attribute path after the colon); SpecError
    saying what to fix when the module or the name is not there or is not callable."""
    module_name, _, attr = name.partition(":")
    module_name, attr = module_name.strip(), attr.strip()
    if not module_name or not attr:
        raise SpecError(f"train.function = '{name}' is not 'module:function'; name the module "
                        "file (without .py) and the function in it, e.g. 'mytrain:train'.")
    importlib.invalidate_caches()  # a module written since the interpreter started
    try:
        obj: Any = _current(importlib.import_module(module_name))
    except ImportError as err:
        raise SpecError(
            f"cannot import module '{module_name}' for train.function = '{name}': {err}. Run "
            "from the folder that holds it (or add that folder to PYTHONPATH).") from None
    except Exception as err:  # the user's module fails at import: say so, without a traceback
        raise SpecError(f"importing module '{module_name}' for train.function = '{name}' raised "
                        f"{type(err).__name__}: {err}. Fix that module and retry.") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            close = difflib.get_close_matches(part, [n for n in dir(obj) if not n.startswith("_")], n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise SpecError(f"module '{module_name}' has no '{attr}' for train.function = "
                            f"'{name}'.{hint} Check the name after the ':'.")
        obj = getattr(obj, part)
    if not callable(obj):
        raise SpecError(f"train.function = '{name}' is a {type(obj).__name__}, not a function "
                        "taking the run (def train(run): ...).")
    return obj


def run_function(config: RunConfig, sink: Callable[[Event], None], *,
                 checkpoint_path: CheckpointLocation | None = None, max_resume_step: int | None = None,
                 prune: PruneOrder | None = None, function: TrainFn | None = None) -> RunEnded:
    """Run one function-sweep run to its end and return how it ended, as ``train_run`` does
    for the built-in loop: ``checkpoint_path`` holds ``run.save``'s state, resumed when its step
    is <= ``max_resume_step`` (None: any); ``function``: the callable itself (default: import
    ``train.function``). An exception in the function fails the run with its text; Ctrl-C
    ends it interrupted and propagates. What the function returns is recorded or refused by
    ``SweepRun.conclude`` (a dict of named numbers: the final values), which also fails a run
    that logged nothing."""
    run_id = config.run_id()
    run: SweepRun | None = None
    try:
        fn = function or resolve_function(config.train.function or "")
        # past the step the store holds rows for: start over rather than lose them
        state = resumable(checkpoint_path, run_id, max_resume_step) if checkpoint_path else None
        run = SweepRun(config, sink, checkpoint_path=checkpoint_path, resume=state, prune=prune).start()
    except KeyboardInterrupt:
        sink(RunEnded(run_id, INTERRUPTED, 0, 0.0, {}, "interrupted by the user (Ctrl-C)"))
        raise
    except Exception as err:
        event = RunEnded(run_id, FAILED, 0, 0.0, {}, error_text(err))
        sink(event)
        return event
    try:
        returned = fn(run)
    except KeyboardInterrupt:
        run.end(INTERRUPTED, "interrupted by the user (Ctrl-C)")
        raise
    except CheckpointFailed as err:  # interrupted, not failed: it resumes from its last save
        return run.end(INTERRUPTED, str(err), fatal=True)
    except Exception as err:
        return run.end(FAILED, error_text(err))
    return run.conclude(returned)


def train_task(config: RunConfig, sink: Callable[[Event], None], *, function: TrainFn | None = None,
               **options: Any) -> RunEnded:
    """What an executor calls for one run: the training function when the config names one
    (or ``function`` is given), else batchlab's loop (``train_run`` with ``options``), over
    ``train.devices`` processes when the run asks for several (``train_ddp``)."""
    if config.train.function is not None:
        keep = {k: options[k] for k in ("checkpoint_path", "max_resume_step", "prune") if k in options}
        return run_function(config, sink, function=function, **keep)
    if config.train.devices > 1:
        from batchlab.train.launch import train_ddp  # torch.distributed only when needed

        return train_ddp(config, sink, **options)
    return train_run(config, sink, **options)


def importable(name: str) -> bool:
    """Whether another process can import ``module:function`` by its name: not a function of
    the main program (a notebook, ``python -c``, the script run), nor a lambda or a function
    defined inside another one."""
    module, _, attr = name.partition(":")
    return module.strip() != "__main__" and "<" not in attr


def check_importable(name: str) -> None:
    """Refuse a function that worker processes cannot import by ``name`` (see ``importable``);
    SpecError with the reason and what to do instead."""
    module, _, attr = name.partition(":")
    why = None
    if module.strip() == "__main__":
        why = "is defined in the main program (a notebook, 'python -c' or the script you ran), " \
              "which worker processes cannot import: each has a main program of its own"
    elif "<" in attr:
        why = "is a lambda or is defined inside another function, which no other process can import"
    else:
        try:
            resolve_function(name)
        except SpecError as err:
            why = f"cannot be imported by that name ({err})"
    if why is not None:
        raise SpecError(
            f"train function '{name}' {why}. Move it to a module file at its top level (for "
            "example mytrain.py beside your notebook, then from mytrain import train), or train "
            "in this process with one worker (workers=1, --workers 1).")


def check_options(spec: Spec) -> None:
    """Refuse what a function sweep cannot do, before anything is stored."""
    t = spec.train
    lrs = [t.lr, *spec.sweep.grid.get("train.lr", [])]
    if "auto" in lrs:
        raise SpecError("train.lr = 'auto' runs the LR range test on batchlab's own loop, which a "
                        "train.function sweep does not use; give the LRs as numbers (run "
                        "'batchlab lr-find' on a spec of your model to find one).")


def prepare_function_sweep(spec: Spec, function: TrainFn | None = None,
                           code: str | None = None) -> PreparedSweep:
    """A function sweep's ``PreparedSweep``: planned runs, each checked (the function imports,
    the sweep's own keys, the schedule, halving's needs) and fingerprinted (``code``: the
    function's source hash when the caller holds the function itself). Raises SpecError before
    anything is stored."""
    from batchlab.execute.sweep import PreparedSweep  # the module that imports this one

    check_options(spec)
    if function is None:
        resolve_function(spec.train.function or "")
    runs = plan_runs(spec)
    hashes = HashCaches()
    prints: dict[str, Fingerprint] = {}
    n_train: dict[str, int] = {}
    notes: list[str] = []
    for run in runs:
        notes += [n for n in _check_run(run) if n not in notes]
        t = run.config.train
        if t.options.get("n_train"):
            n_train[run.run_id] = int(t.options["n_train"])
        prints[run.run_id] = Fingerprint(code=code) if function is not None else hashes.run(run.config)
    hashes.save()
    check_halving(spec, runs)
    if spec.sweep.prune == "halving" and len(n_train) < len(runs):
        raise SpecError("sweep.prune = 'halving' compares runs at equal examples seen, so it needs "
                        "the training set's size: give n_train as a key of the sweep "
                        "(bl.sweep(..., n_train=len(train_set)) or train.options.n_train).")
    note = halving_note(spec, runs, n_train)  # n_train has every run here, when halving
    return PreparedSweep(runs, fingerprints=prints, notes=notes + ([note] if note else []),
                         n_train=n_train)


def _check_run(run: RunSpec) -> list[str]:
    """SpecError for a run the function could not be given (its keys, its schedule); else the
    ``schedule_notes`` a model sweep says of its schedule, when the run's length is known
    (``n_train``/``steps_per_epoch``, or ``train.steps``)."""
    t = run.config.train
    for key in POSITIVE_OPTIONS:
        value = t.options.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise SpecError(f"the sweep's key '{key}' = {value!r} must be a positive integer "
                            f"(or left out): batchlab reads it to count epochs and examples seen.")
    length = schedule_length(t)
    if isinstance(length, str):  # every run would fail at run.lr_at: say it once, now
        raise SpecError(f"train.schedule of run {run.point}: {length}.")
    try:
        schedule_fn(t.schedule, t.numeric_lr(), *length)
    except BatchlabError:
        raise
    except ValueError as err:
        raise SpecError(f"train.schedule of run {run.point}: {err}") from None
    if run_steps_per_epoch(t.options, t.batch_size) is None and t.steps is None:
        return []  # its length is a stand-in (schedule_length): nothing to say of it
    return schedule_notes(t.schedule, *length)
