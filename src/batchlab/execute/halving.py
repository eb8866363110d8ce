"""Successive halving across a sweep's runs (``sweep.prune = "halving"``).

Every configuration (the runs of one config across seeds) trains to the first rung, a budget
of **examples seen** (never of steps: batch sizes differ, and 100 steps at batch 128 see 8x
what 100 steps at batch 16 see); the configurations are ranked by their validation loss there
(mean over seeds) and the best ``1/eta`` continue, from their checkpoints, to the next rung;
the others stop as ``pruned`` with their rank in the reason. The last survivors train to the
end. Hopeless runs (``batchlab.collapse``) are pruned on the way as with ``"hopeless"``.

Rungs: with B the smallest run's whole budget in examples and n configurations, there are
k = floor(log_eta n) rungs at B/eta^k, ..., B/eta, fewer when the first would be under one
epoch. A run pauses at the first epoch end at or after the rung's budget (resuming from a
checkpoint needs an epoch end), so runs on the same data pause at exactly the same number of
examples whatever their batch size. The ranking is read back from the store, so a sweep
interrupted between rungs picks up where it stopped, and works with every executor.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from batchlab.errors import SpecError
from batchlab.events import DIVERGED, FAILED, FINAL_STATUSES, PRUNED
from batchlab.plan import RunSpec
from batchlab.spec import DataSpec, Spec
from batchlab.store import Store
from batchlab.store.lifecycle import checkpoint_file
from batchlab.train.prune import PruneOrder
from batchlab.train.schedules import run_length, steps_per_epoch

Train = Callable[[list[RunSpec], PruneOrder], None]


def check_halving(spec: Spec, runs: Sequence[RunSpec]) -> None:
    """Refuse halving where it cannot work: runs without checkpoints cannot be continued
    from a rung (they would start again from scratch)."""
    if spec.sweep.prune != "halving":
        return
    if any(not r.config.train.checkpoint for r in runs):
        raise SpecError("sweep.prune = 'halving' continues the best runs from the checkpoint "
                        "each wrote at its rung, but train.checkpoint = false; set "
                        "train.checkpoint = true, or use sweep.prune = 'hopeless' or 'off'.")


def train_sizes(runs: Sequence[RunSpec], known: Mapping[str, int],
                load_data: Callable[[DataSpec], Any]) -> dict[str, int]:
    """Training examples of every run, by run id: ``known`` (``PreparedSweep.n_train``), the
    rest loaded with ``load_data`` (once per data spec). ``load_data`` must load data the way
    the sweep's executor does: a Python API sweep's data (``data.name = 'memory'``) exist only
    in its ``RunInputs``, which the spec's own loader cannot reach."""
    sizes: dict[str, int] = {}
    loaded: dict[str, int] = {}
    for run in runs:
        if known.get(run.run_id):
            sizes[run.run_id] = known[run.run_id]
            continue
        key = run.config.data.model_dump_json()
        if key not in loaded:
            loaded[key] = len(load_data(run.config.data).train_y)
        sizes[run.run_id] = loaded[key]
    return sizes


def halving_note(spec: Spec, runs: Sequence[RunSpec], n_train: Mapping[str, int]) -> str | None:
    """Why ``sweep.prune = "halving"`` halves nothing in this sweep (it has no rung, so every
    run trains to its end), in one paragraph to say at the sweep's start; None when it halves,
    or prune is not ``"halving"``. ``n_train``: training examples of every run, by run id."""
    if spec.sweep.prune != "halving" or not runs:
        return None
    eta = spec.sweep.halving_eta
    n = len({config_key(r) for r in runs})
    sizes = [n_train[r.run_id] for r in runs]
    if rung_budgets([total_examples(r, n_train[r.run_id]) for r in runs], sizes, n, eta):
        return None
    then = ("so every run trains to its end (runs that collapse to chance are still pruned, as "
            "with 'hopeless')")
    configs = "1 configuration" if n == 1 else f"{n} configurations"
    if n < eta:
        fix = (f"sweep {eta} or more configurations (seeds of one count as one)"
               + (f", or set sweep.halving_eta = {n}" if n >= 2 else "")
               + ", or use sweep.prune = 'hopeless', which is what this sweep does now")
        return (f"sweep.prune = 'halving' halves nothing here: the sweep has {configs}, fewer "
                f"than sweep.halving_eta = {eta}, and each rung keeps the best 1/{eta} of them, "
                f"{then}. To compare them at rungs, {fix}.")
    budget = min(total_examples(r, n_train[r.run_id]) for r in runs)
    fix = f"train for {eta} epochs or more (train.epochs)" + (
        ", or lower sweep.halving_eta" if eta > 2 else "")
    return (f"sweep.prune = 'halving' halves nothing here: the shortest run sees {budget} "
            f"examples, so the first rung ({budget}/{eta}) would come before the end of the "
            f"first epoch ({max(sizes)} examples), where no run can pause, {then}. To compare "
            f"the {configs} at rungs, {fix}.")


def total_examples(run: RunSpec, n_train: int) -> int:
    """Examples a run sees over its whole length (the last batch of an epoch may be partial)."""
    t = run.config.train
    spe = steps_per_epoch(n_train, t.batch_size)
    epochs, within = divmod(run_length(t.steps, t.epochs, spe), spe)
    return epochs * n_train + min(within * t.batch_size, n_train)


def rung_budgets(totals: Sequence[int], epoch_sizes: Sequence[int], n_configs: int,
                 eta: int) -> list[int]:
    """The rungs' budgets in examples seen, smallest first (the end of training not included):
    B/eta^k .. B/eta for B = min(totals) and the largest k with eta^k <= n_configs whose
    first rung is at least the largest epoch (``epoch_sizes``). Empty: no halving possible."""
    if not totals or n_configs < 2:
        return []
    budget = min(totals)
    k = 0
    while eta ** (k + 1) <= n_configs:
        k += 1
    while k > 0 and budget / eta**k < max(epoch_sizes):
        k -= 1
    return [math.ceil(budget / eta**j) for j in range(k, 0, -1)]


def config_key(run: RunSpec) -> str:
    """A configuration: the run's config without its seed (seeds of one config rank together)."""
    config = run.config.model_dump(mode="json")
    config["train"].pop("seed")
    return json.dumps(config, sort_keys=True)


def survivors(scores: dict[str, float], eta: int, entered: int) -> list[str]:
    """The keys of the best ``ceil(entered / eta)`` finite scores (lowest first)."""
    keep = max(1, math.ceil(entered / eta))
    ranked = sorted((k for k, v in scores.items() if math.isfinite(v)), key=lambda k: scores[k])
    return ranked[:keep]


def val_loss_at(store: Store, run_id: str, budget: int) -> float:
    """The run's validation loss at its first evaluation with >= ``budget`` examples seen (NaN
    when it has none: it stopped before the rung)."""
    series = store.metrics(run_id, ["val_loss"]).get("val_loss")
    if series is None:
        return math.nan
    at = np.flatnonzero(series.examples >= budget)
    return float(series.value[at[0]]) if at.size else math.nan


def run_halving(runs: list[RunSpec], store: Store, train: Train, eta: int,
                sizes: Mapping[str, int]) -> None:
    """Drive successive halving over ``runs`` with ``train(runs, order)`` (which trains the
    given runs, claiming each, as far as ``order`` lets them go). ``sizes``: the training
    examples of every run, by run id (``train_sizes``). See the module doc."""
    groups: dict[str, list[RunSpec]] = {}
    for run in runs:
        groups.setdefault(config_key(run), []).append(run)
    budgets = rung_budgets([total_examples(r, sizes[r.run_id]) for r in runs],
                           list(sizes.values()), len(groups), eta)
    alive = list(groups)
    for i, budget in enumerate(budgets):
        rung = f"rung {i + 1} of {len(budgets)}"
        status = {r.id: r.status for r in store.runs()}
        todo = [r for key in alive for r in groups[key] if status[r.run_id] not in FINAL_STATUSES
                and math.isnan(val_loss_at(store, r.run_id, budget))]  # not at the rung yet
        train(todo, PruneOrder(hopeless=True, pause_at_examples=budget, rung=rung))
        status = {r.id: r.status for r in store.runs()}
        scores = {}
        for key in alive:
            losses = [val_loss_at(store, r.run_id, budget) for r in groups[key]]
            out = any(status[r.run_id] in (PRUNED, DIVERGED, FAILED) for r in groups[key])
            scores[key] = math.inf if out or any(map(math.isnan, losses)) else float(np.mean(losses))
        keep = survivors(scores, eta, len(alive))
        ranked = sorted(alive, key=lambda k: scores[k])
        for key in alive:
            if key in keep:
                continue
            why = (f"successive halving: val loss {scores[key]:.4g} at {budget} examples seen "
                   f"ranks {ranked.index(key) + 1} of {len(alive)} configurations at {rung} "
                   f"(the best {len(keep)} continue)") if math.isfinite(scores[key]) else None
            if why is not None:
                prune_runs(store, [r.run_id for r in groups[key]], why)
        alive = keep
    status = {r.id: r.status for r in store.runs()}
    train([r for key in alive for r in groups[key] if status[r.run_id] not in FINAL_STATUSES],
          PruneOrder(hopeless=True))


def prune_runs(store: Store, run_ids: list[str], reason: str) -> None:
    """Mark the runs among ``run_ids`` that are paused (not final, not running) ``pruned`` with
    ``reason``, and delete their checkpoints: nothing resumes them but ``--rerun``."""
    done = store.mark_pruned(run_ids, reason)
    for rid in done:  # after the commit: a crash in between leaves an unused file only
        checkpoint_file(store.path, rid).unlink(missing_ok=True)
