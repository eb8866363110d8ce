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
from collections.abc import Callable, Sequence

import numpy as np

from batchlab.errors import SpecError
from batchlab.events import DIVERGED, FAILED, FINAL_STATUSES, PRUNED
from batchlab.execute.datacache import DataCache
from batchlab.plan import RunSpec
from batchlab.spec import Spec
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
                n_train: dict[str, int]) -> None:
    """Drive successive halving over ``runs`` with ``train(runs, order)`` (which trains the
    given runs, claiming each, as far as ``order`` lets them go). See the module doc."""
    cache = DataCache()  # only for callers that did not say (n_train is prepare_sweep's)
    sizes = {r.run_id: n_train.get(r.run_id) or len(cache.load(r.config.data).train_y) for r in runs}
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
