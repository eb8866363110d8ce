"""Stores for the report tests: a tiny real sweep, and hand-written runs for edge cases."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any
from unittest.mock import patch

import numpy as np

from batchlab.events import COMPLETED, DIVERGED, MetricRows, RunEnded, RunStarted
from batchlab.execute.inline import InlineExecutor
from batchlab.execute.sweep import run_sweep
from batchlab.plan import plan_runs
from batchlab.spec import spec_from_dict
from batchlab.store import Store

TINY_DATA = {"name": "synthetic", "shape": [10], "classes": 3, "size": 200}


def tiny_spec(name: str = "tiny", lrs: tuple[float, ...] = (0.1, 0.01), repeats: int = 2) -> Any:
    return spec_from_dict({
        "name": name, "data": TINY_DATA, "model": {"name": "mlp", "hidden": [8]},
        "train": {"epochs": 2, "threads": 1},
        "sweep": {"grid": {"train.batch_size": [16, 64], "train.lr": list(lrs)}, "repeats": repeats},
    })


def run_tiny_sweep(store: Store, name: str = "tiny", lrs: tuple[float, ...] = (0.1, 0.01)) -> None:
    """A real sweep: 2 batch sizes x 2 LRs x 2 seeds of a tiny MLP on synthetic data."""
    run_sweep(tiny_spec(name, lrs), store, InlineExecutor(threads=1))


def real_probe_results() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(kind, config, result) of the four probes run for real on the tiny spec's config, as the
    probe commands store them: an LR range test at two batch sizes, the largest batch under a
    10 KiB limit (so some sizes do not fit), a throughput curve and a noise-scale probe."""
    from batchlab.probes.lr_search import lr_find
    from batchlab.probes.max_batch import max_batch
    from batchlab.probes.noise_scale import measure_noise_scale
    from batchlab.probes.throughput import throughput_curve
    from batchlab.spec import RunConfig

    spec = tiny_spec()
    config = RunConfig(data=spec.data, model=spec.model, train=spec.train)
    dumped = config.model_dump(mode="json")
    # max_batch from the step's accounting alone (no resident-memory reading): exact, so the
    # same sizes fit the 10 KiB on every machine
    with patch("batchlab.probes.max_batch.resident_bytes", return_value=None):
        largest = max_batch(config, memory_limit=10 * 2**10, max_batch=128).to_dict()
    return [
        ("lr_range", dumped, lr_find(config, batch_sizes=[16, 64], repeats=2, steps=40).to_dict()),
        ("max_batch", dumped, largest),
        ("throughput", dumped, throughput_curve(config, batch_sizes=[8, 32], window_steps=3,
                                                window_seconds=0.01).to_dict()),
        ("noise_scale", dumped, measure_noise_scale(config, steps=40).to_dict()),
    ]


def add_probes(store: Store, experiment: str,
               results: list[tuple[str, dict[str, Any], dict[str, Any]]]) -> None:
    """Store ``results`` under ``experiment``, the LR range test twice (a re-run with the same
    settings, which the report shows once)."""
    kind, config, result = results[0]
    store.add_probe(experiment, kind, config, result)
    for kind, config, result in results:
        store.add_probe(experiment, kind, config, result)


def hand_store(path: Path, name: str, runs: list[dict[str, Any]], n_train: int = 100) -> Store:
    """A store with ``runs`` written by hand as a trainer would: each dict has batch_size, lr,
    and optionally seed, steps (default 30), diverge_at (a step whose loss is inf), evals
    (evaluate every N steps, default 10) and status (default from diverge_at)."""
    grid_b = sorted({r["batch_size"] for r in runs})
    grid_lr = sorted({r["lr"] for r in runs})
    seeds = sorted({r.get("seed", 0) for r in runs})
    spec = spec_from_dict({
        "name": name, "data": TINY_DATA, "model": {"name": "mlp", "hidden": [8]},
        "train": {"epochs": 1},
        "sweep": {"grid": {"train.batch_size": grid_b, "train.lr": grid_lr}, "repeats": len(seeds)},
    })
    planned = {(p.config.train.batch_size, p.config.train.lr, p.config.train.seed): p
               for p in plan_runs(spec)}
    store = Store(path)
    wanted = [planned[(r["batch_size"], r["lr"], r.get("seed", 0))] for r in runs]
    store.add_experiment(name, spec.model_dump(mode="json"), wanted)
    for r, p in zip(runs, wanted, strict=True):
        _write_run(store, p.run_id, r, n_train)
    return store


def _write_run(store: Store, run_id: str, r: dict[str, Any], n_train: int) -> None:
    b, steps = r["batch_size"], r.get("steps", 30)
    stop = r.get("diverge_at") or steps
    rng = np.random.default_rng(r.get("seed", 0))
    store.record(RunStarted(run_id, steps, 0, {}))
    rows = []

    def at(s: int) -> tuple[float, int, float]:
        ex = s * b
        return ex / n_train, ex, 0.01 * s

    for s in range(1, stop + 1):
        loss = math.inf if s == r.get("diverge_at") else 2.0 * math.exp(-s / 10) + rng.uniform(0, 0.1)
        rows += [("train_loss", s, loss, *at(s)), ("lr", s, r["lr"], *at(s))]
    every = r.get("evals", 10)
    for s in range(0, stop, every) if r.get("diverge_at") else range(0, stop + 1, every):
        acc = min(1.0, 0.3 + 0.02 * s)
        rows += [(n, s, v, *at(s)) for n, v in (("val_loss", 2.0 - s / 20), ("val_acc", acc),
                                                ("train_eval_loss", 1.9 - s / 20), ("train_acc", acc))]
    if rows:
        store.record(MetricRows(run_id, rows, stop))
    status = r.get("status") or (DIVERGED if r.get("diverge_at") else COMPLETED)
    store.record(RunEnded(run_id, status, stop, 0.01 * stop, {"effective_lr": r["lr"]},
                          "non-finite loss" if status == DIVERGED else None))
