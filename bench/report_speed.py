"""How long does a report of a big experiment take? (target: under 10 s for 50 runs x 10,000 steps)

Builds a store with synthetic rows, no training: an experiment planned by ``plan_runs`` over
batch size x LR with 2 seeds (50 runs), each run with 10,000 steps of ``train_loss`` and ``lr``
(a noisy decaying loss, step decay of the LR) and an evaluation every 500 steps (``val_loss``,
``val_acc``, ``train_eval_loss``, ``train_acc``, ``samples_per_s``), written with
``Store.record(MetricRows(...))`` in batches and ended with ``RunEnded`` and a summary; a few
runs at the largest LR diverge. Then times ``write_report`` (reading the store, analysis,
every figure, the HTML) and ``export_tensorboard``.

    python bench/report_speed.py [--runs-per-seed-grid 5x5] [--steps 10000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from batchlab.events import COMPLETED, DIVERGED, MetricRows, RunEnded, RunStarted
from batchlab.plan import plan_runs
from batchlab.report import export_tensorboard, write_report
from batchlab.spec import spec_from_dict
from batchlab.store import Store

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine_line  # noqa: E402

N_TRAIN = 50_000
EVAL_EVERY = 500
FLUSH_ROWS = 20_000  # rows per MetricRows event, like a trainer flushing in batches


def synthetic_rows(batch: int, lr: float, seed: int, steps: int) -> tuple[list, dict, bool]:
    """Rows of one run: loss falls faster with larger lr * batch, noise shrinks with batch;
    the largest LR at the smallest batches diverges half way."""
    rng = np.random.default_rng(seed * 7919 + batch)
    step = np.arange(1, steps + 1)
    spe = math.ceil(N_TRAIN / batch)
    examples = np.minimum(step * batch, (step // spe) * N_TRAIN + (step % spe) * batch)
    epoch = examples / N_TRAIN
    wall = step * (0.002 + batch * 2e-5)
    rate = lr * math.sqrt(batch) / 40
    lrs = lr * np.where(step > 2 * steps // 3, 0.1, 1.0)  # the spec's step schedule
    loss = 0.05 + 2.3 * np.exp(-rate * step / 100) + rng.normal(0, 0.3 / math.sqrt(batch), steps).clip(-0.04)
    diverged = lr >= 0.3 and batch <= 32
    if diverged:
        loss = loss[: steps // 2]
        loss[-1] = math.inf
    n = loss.size
    rows = [r for i in range(n) for r in (("train_loss", int(step[i]), float(loss[i]), float(epoch[i]),
                                           int(examples[i]), float(wall[i])),
                                          ("lr", int(step[i]), float(lrs[i]), float(epoch[i]),
                                           int(examples[i]), float(wall[i])))]
    best = 0.0
    for s in [0, *range(EVAL_EVERY, n + 1, EVAL_EVERY)]:
        i = max(s - 1, 0)
        vl = float(loss[i]) + 0.05 + rng.normal(0, 0.01)
        va = float(np.clip(1 - vl / 2.5 + rng.normal(0, 0.01), 0, 1))
        best = max(best, va)
        ep, ex, w = (float(epoch[i]), int(examples[i]), float(wall[i])) if s else (0.0, 0, 0.0)
        rows += [(name, s, v, ep, ex, w) for name, v in (
            ("val_loss", vl), ("val_acc", va), ("train_eval_loss", vl - 0.04),
            ("train_acc", min(1.0, va + 0.02)), ("samples_per_s", batch / (0.002 + batch * 2e-5)))]
    summary = {"best_val_acc": best, "final_val_acc": va, "final_val_loss": vl, "effective_lr": lr,
               "total_steps": steps, "steps_per_epoch": spe}
    return rows, summary, diverged


def build_store(path: Path, batches: list[int], lrs: list[float], steps: int) -> tuple[str, int, int]:
    spec = spec_from_dict({
        "name": "report-speed", "data": {"name": "synthetic", "shape": [10], "classes": 3},
        "model": {"name": "mlp", "hidden": [8]},
        # the LR decays x0.1 after two thirds of the steps, as synthetic_rows records it
        "train": {"eval_every": EVAL_EVERY,
                  "schedule": {"name": "step", "unit": "step", "step_size": 2 * steps // 3}},
        "sweep": {"grid": {"train.batch_size": batches, "train.lr": lrs}, "repeats": 2},
    })
    runs = plan_runs(spec)
    rows_total = 0
    with Store(path) as store:
        store.add_experiment(spec.name, spec.model_dump(mode="json"), runs)
        for run in runs:
            t = run.config.train
            rows, summary, diverged = synthetic_rows(t.batch_size, t.lr, t.seed, steps)
            store.record(RunStarted(run.run_id, steps, 0, {"device": "cpu"}))
            for i in range(0, len(rows), FLUSH_ROWS):
                chunk = rows[i:i + FLUSH_ROWS]
                store.record(MetricRows(run.run_id, chunk, max(r[1] for r in chunk)))
            done = max(r[1] for r in rows)
            store.record(RunEnded(run.run_id, DIVERGED if diverged else COMPLETED, done,
                                  done * 0.003, summary, "non-finite loss" if diverged else None))
            rows_total += len(rows)
    return spec.name, len(runs), rows_total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--keep", type=Path, help="write the store and report here instead of a temp dir")
    args = parser.parse_args()
    batches, lrs = [16, 32, 64, 128, 256], [0.3, 0.1, 0.03, 0.01, 0.003]
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        db = root / "report_speed.db"
        db.unlink(missing_ok=True)
        t0 = time.perf_counter()
        name, n_runs, n_rows = build_store(db, batches, lrs, args.steps)
        print(machine_line())
        print(f"store: {n_runs} runs x {args.steps} steps, {n_rows:,} metric rows "
              f"(built in {time.perf_counter() - t0:.1f} s, not timed)")
        with Store(db) as store:
            t0, c0 = time.perf_counter(), time.process_time()
            result = write_report(store, name, root / "report.html")
            report_s, report_cpu = time.perf_counter() - t0, time.process_time() - c0
            t0 = time.perf_counter()
            files = export_tensorboard(store, name, root / "tb")
            tb_s = time.perf_counter() - t0
        size = (root / "report.html").stat().st_size / 1e6
        # CPU time too: on a shared machine the wall time also measures the neighbours
        print(f"write_report: {report_s:.2f} s wall, {report_cpu:.2f} s CPU  ({len(result.figures)} "
              f"figures, HTML {size:.1f} MB)  target < 10 s: {'OK' if report_s < 10 else 'TOO SLOW'}")
        print(f"export_tensorboard: {tb_s:.2f} s  ({len(files)} event files)")


if __name__ == "__main__":
    main()
