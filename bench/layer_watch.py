"""What ``train.watch`` (per-layer signals at each evaluation) costs a run: watch on vs off.

Each case trains the same run with ``train.watch`` on and off, interleaved (the order
alternates each repetition), timing the whole run (``train_run``'s wall, evaluations
included: the probe pass and the weight copy happen there). The overhead is the median of the
per-repetition ratios on/off minus 1. The budget is 2 %. The middle half of the ratios (their
quartiles) is printed beside it: how far one repetition strays on this machine at this load.

A second table times the watch's own code inside the watched runs (this thread's CPU time in
``LayerWatch.arm``, ``collect``, the dead-unit block's entry and exit and the bodies of the
hooks it registers), as a share of the run: the cost itself, without the other runs' scatter
that the ratio carries on a busy machine (but not what the watch costs the training code
around it, e.g. in caches: the ratio has that).

    python bench/layer_watch.py              # 3 cases x 5 repetitions (~1-2 min on one core)
    python bench/layer_watch.py --reps 9
    python bench/layer_watch.py --clock cpu   # this thread's CPU time: steadier on a busy machine
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from _common import load_line, machine_line, median, print_table, run_config, set_threads, train_collect
from torch import nn

from batchlab.data import load_dataset
from batchlab.spec import DataSpec
from batchlab.train.watch import LayerWatch

# name -> (data spec, model spec, train fields): evaluation once per epoch (the default)
CASES = {
    "mlp digits b32": ({"name": "digits"}, {"name": "mlp"}, {"batch_size": 32, "epochs": 4}),
    "lenet5 digits b64": ({"name": "digits"}, {"name": "lenet5"}, {"batch_size": 64, "epochs": 3}),
    "cnn1d mnist1d b128": ({"name": "mnist1d", "size": 4000}, {"name": "cnn1d"},
                           {"batch_size": 128, "epochs": 3}),
}
BUDGET = 0.02


@contextmanager
def own_time() -> Iterator[dict[str, float]]:
    """Inside the block, the thread CPU seconds spent in the watch's own code, by part.

    Wraps ``LayerWatch.arm``, ``collect`` and ``dead_units`` (its entry and exit: hooks
    registered and removed, the counts read), and ``nn.Module.register_forward_hook`` while the
    watch registers its dead-unit hooks, so that their bodies are timed where they run, inside
    the evaluation pass. Everything is restored on exit."""
    spent: dict[str, float] = {}

    def timed(part: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[part] = spent.get(part, 0.0) + time.thread_time() - t0
        return wrapper

    register = nn.Module.register_forward_hook
    saved = {name: LayerWatch.__dict__[name] for name in ("arm", "collect", "dead_units", "_probe_hooks")}
    probe, dead = LayerWatch._probe_hooks, LayerWatch.dead_units.__wrapped__  # type: ignore[attr-defined]

    @contextmanager
    def timed_probe(self: LayerWatch, *args: Any) -> Iterator[None]:
        def timed_register(module: nn.Module, hook: Callable[..., Any], *a: Any, **k: Any) -> Any:
            return register(module, timed("dead-unit hooks", hook), *a, **k)
        nn.Module.register_forward_hook = timed_register  # type: ignore[method-assign]
        try:
            block = probe(self, *args)
            block.__enter__()
        finally:
            nn.Module.register_forward_hook = register  # type: ignore[method-assign]
        try:
            yield
        finally:
            block.__exit__(None, None, None)

    @contextmanager
    def timed_dead(self: LayerWatch, *args: Any, **kwargs: Any) -> Iterator[dict[str, float]]:
        steps = dead(self, *args, **kwargs)
        out = timed("dead-unit block", next)(steps)
        yield out
        timed("dead-unit block", next)(steps, None)

    LayerWatch.arm = timed("arm", saved["arm"])  # type: ignore[method-assign]
    LayerWatch.collect = timed("collect", saved["collect"])  # type: ignore[method-assign]
    LayerWatch.dead_units = timed_dead  # type: ignore[method-assign]
    LayerWatch._probe_hooks = timed_probe  # type: ignore[method-assign]
    try:
        yield spent
    finally:
        for name, fn in saved.items():
            setattr(LayerWatch, name, fn)


PARTS = ("arm", "collect", "dead-unit block", "dead-unit hooks")


def own_row(name: str, config: Any, loaded: Any, reps: int) -> list[Any]:
    """One case's row of the own-time table: ``reps`` watched runs, thread CPU time."""
    total = 0.0
    with own_time() as spent:
        for _ in range(reps):
            t0 = time.thread_time()
            train_collect(config, loaded)
            total += time.thread_time() - t0
    watch = sum(spent.values())
    return [name, f"{1000 * total / reps:.1f}", *(f"{1000 * spent.get(p, 0.0) / reps:.2f}" for p in PARTS),
            f"{1000 * watch / reps:.2f}", f"{100 * watch / total:.2f} %",
            "ok" if watch <= BUDGET * total else "OVER"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="cpu: time.thread_time (1 torch thread: the work done, whatever else "
                         "holds the cores)")
    args = ap.parse_args()
    clock = time.thread_time if args.clock == "cpu" else time.perf_counter
    set_threads(1)
    print(machine_line())
    rows, own_rows = [], []
    for name, (data, model, train) in CASES.items():
        loaded = load_dataset(DataSpec(**data))
        configs = {w: run_config(data, model, {**train, "threads": 1, "watch": w, "checkpoint": False})
                   for w in (True, False)}
        train_collect(configs[True], loaded)  # warm-up: first-call costs are no one's overhead
        ratios, on_s, off_s = [], [], []
        for rep in range(args.reps):
            wall = {}
            for w in ((True, False) if rep % 2 == 0 else (False, True)):
                t0 = clock()
                train_collect(configs[w], loaded)
                wall[w] = clock() - t0
            ratios.append(wall[True] / wall[False])
            on_s.append(wall[True])
            off_s.append(wall[False])
        overhead = median(ratios) - 1
        q1, _, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else (ratios[0],) * 3
        rows.append([name, median(off_s), median(on_s), f"{100 * overhead:+.2f} %",
                     f"{100 * (q1 - 1):+.1f} .. {100 * (q3 - 1):+.1f} %",
                     "ok" if overhead <= BUDGET else "OVER"])
        own_rows.append(own_row(name, configs[True], loaded, args.reps))
    print(load_line())
    print(f"clock: {args.clock}")
    print_table(["case", "watch off s", "watch on s", "overhead (median ratio)",
                 "middle half of the ratios", "<= 2 %"], rows)
    print("\nthe watch's own code in the watched runs (CPU ms per run; share of the run):")
    print_table(["case", "run ms", *PARTS, "watch ms", "share", "<= 2 %"], own_rows)


if __name__ == "__main__":
    main()
