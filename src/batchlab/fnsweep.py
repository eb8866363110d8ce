"""``bl.sweep(name, train_fn, grid=...)``: sweep the user's own training function.

The keywords become a spec with ``train.function`` naming the function (``module:qualname``,
so the run ids cover which function it is): a short name that is a ``train`` field
(``batch_size``, ``lr``, ``schedule``, ``seed``, ``epochs``, ``steps``, ``scale_lr``, ...) is that
field, any other key is the sweep's own (``train.options``) and reaches the function in
``run.config`` beside them. The fingerprint of every run holds the function's source (its
module file's, or the function's own for a notebook cell), so editing the function retrains
the runs. Then the sweep runs as ``batchlab sweep`` does: skip, resume, pruning, report.
"""

from __future__ import annotations

import hashlib
import inspect
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchlab.apispec import keyword_spec
from batchlab.errors import ExecutorError, SpecError
from batchlab.spec import Spec, TrainSpec

if TYPE_CHECKING:
    from batchlab.apiresult import SweepResult
    from batchlab.execute.dryrun import DryRun
    from batchlab.execute.function import TrainFn

NOT_SWEPT = ("function", "options")  # set by the call itself


def function_name(fn: Any) -> str:
    """``module:qualname`` of a training function, with ``@<line>`` for a lambda (every lambda
    of a module has the qualname ``<lambda>``); SpecError when ``fn`` is not a function (a
    callable object's name would not tell two of them apart in the run ids)."""
    if not inspect.isfunction(fn):
        raise SpecError(f"bl.sweep's second argument is a {type(fn).__name__}; pass your training "
                        "function (def train(run): ...; wrap a callable object in one), or "
                        "model= and train= for batchlab's own loop.")
    name = f"{fn.__module__}:{fn.__qualname__}"
    if fn.__name__ == "<lambda>":
        # the run ids cover this name: without the line, a second lambda swept on the same grid
        # took the first one's runs as its own (skipped, showing the first lambda's results)
        name += f"@{fn.__code__.co_firstlineno}"
    return name


def field_path(key: str) -> str:
    """The spec path of a keyword or grid key of a function sweep."""
    if "." in key:
        if not key.startswith("train."):
            raise SpecError(f"'{key}': a function sweep has train fields and keys of its own only "
                            "(it loads its data and builds its model itself); use 'train.<field>' "
                            "or a plain name, which reaches your function in run.config.")
        return key
    if key in NOT_SWEPT:
        raise SpecError(f"'{key}' is set by bl.sweep itself (the function you pass); leave it out.")
    return f"train.{key}" if key in TrainSpec.model_fields else f"train.options.{key}"


def function_spec(name: str, fn_name: str, grid: dict[str, list[Any]] | None,
                  fields: dict[str, Any], repeats: int, prune: str) -> Spec:
    """The validated spec of a function sweep (see the module doc)."""
    raw: dict[str, Any] = {"name": name, "train": {"function": fn_name}}
    return keyword_spec(raw, grid, fields, repeats, prune, f"batchlab.sweep('{name}', {fn_name})",
                        field_path)


def source_fingerprint(fn: Any, fn_name: str) -> str | None:
    """SHA-256 of the function's module file (as for ``model.name`` factories: helpers in the
    same file count), or of the function's own source where there is no file (a notebook)."""
    from batchlab.fingerprint import code_fingerprint

    if (code := code_fingerprint(fn_name)) is not None:
        return code
    try:
        return hashlib.sha256(inspect.getsource(fn).encode()).hexdigest()
    except (OSError, TypeError):
        return None  # python -c: nothing to read; the name alone identifies the runs


def sweep_function(name: str, fn: TrainFn, *, grid: dict[str, list[Any]] | None,
                   store: str | Path, repeats: int, workers: int, prune: str,
                   fields: dict[str, Any], verbose: bool = True,
                   dry_run: bool = False) -> SweepResult | DryRun:
    """Run the function sweep and return ``bl.sweep``'s result (see ``batchlab.api.sweep``);
    ``verbose``: print the plan and one line per run that ends, as ``bl.sweep`` does;
    ``dry_run``: train and write nothing, return the ``DryRun`` (see ``bl.sweep``). Raises
    ExecutorError naming the most common cause when every run of the experiment that ended
    failed, as a model sweep does (the runs stay stored)."""
    import torch

    from batchlab.api import API_AGAIN, SweepResult, _warn, dry_run_result
    from batchlab.execute.function import (
        check_importable,
        importable,
        prepare_function_sweep,
        resolve_function,
    )
    from batchlab.execute.inline import InlineExecutor
    from batchlab.execute.local import LocalPoolExecutor
    from batchlab.execute.sweep import run_sweep
    from batchlab.lineprogress import LineProgress
    from batchlab.mainguard import unguarded_message
    from batchlab.store import Store

    fn_name = function_name(fn)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise SpecError(f"workers={workers!r} must be a positive integer (1: in this process).")
    if workers > 1:
        check_importable(fn_name)
        if (why := unguarded_message("batchlab.sweep", workers)) is not None:
            raise SpecError(why)
    if importable(fn_name):
        # the module's current code, reloaded when its file changed since it was imported (as
        # model factories are): the fingerprint is the file's, so the runs must train its code
        fn = resolve_function(fn_name)
    spec = function_spec(name, fn_name, grid, dict(fields), repeats, prune)
    prepared = prepare_function_sweep(spec, fn, source_fingerprint(fn, fn_name))
    if dry_run:  # a notice warns at the user's bl.sweep line, as below
        return dry_run_result(spec, prepared, Path(store), verbose, stacklevel=5)
    executor = InlineExecutor(function=fn) if workers == 1 else LocalPoolExecutor(workers)
    threads = torch.get_num_threads()  # train.threads applies to the runs, not to the session
    try:
        with Store(store) as st:
            progress = LineProgress(spec.name) if verbose else None
            # a notice warns at the user's bl.sweep line: one frame further than a model sweep's
            outcome = run_sweep(spec, st, executor, prepared=prepared,
                                on_notice=partial(_warn, stacklevel=5),
                                on_plan=progress.on_plan if progress else None,
                                on_event=progress.on_event if progress else None)
    finally:
        torch.set_num_threads(threads)
    # as a model sweep: a table of failed rows would hide that nothing trained
    if (why := outcome.all_failed_here(API_AGAIN.format(name=spec.name, store=store))) is not None:
        raise ExecutorError(why)
    return SweepResult(spec.name, Path(store), outcome.planned, outcome.skipped, outcome.trained)
