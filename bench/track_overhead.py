"""What ``bl.track`` costs a hand-written loop: the same loop with and without ``run.log`` of
the loss (a tensor, as docs/tracking.md shows) and LR every step and validation every epoch.

Both loops train the same small MLP on the same random tensors (1 torch thread), interleaved
(the order alternates each repetition); the ratio is the median of the per-repetition ratios
tracked/plain of the loop's thread CPU time (steadier than wall time on a busy machine).
The run's start and final flush (opening the store, writing the last rows) are outside the
timed loop; the flushes due inside it (one a second) are in it.
Target: at most 1.05 (tracking costs at most 5 %).

    python bench/track_overhead.py [--reps 5] [--epochs 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from _common import load_line, machine_line, median, print_table, set_threads

import batchlab as bl


def loop(x: torch.Tensor, y: torch.Tensor, epochs: int, batch: int, run: object | None) -> float:
    """Train; log to ``run`` when given. Returns the thread CPU seconds the loop took."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    start, step = time.thread_time(), 0
    for _ in range(epochs):
        for i in range(0, len(y), batch):
            loss = F.cross_entropy(model(x[i:i + batch]), y[i:i + batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if run is not None:
                run.log(step, train_loss=loss.detach(), lr=0.05)
        with torch.no_grad():  # both loops evaluate; only the tracked one logs
            val_loss = F.cross_entropy(model(x[:256]), y[:256]).item()
        if run is not None:
            run.log(step, val_loss=val_loss)
    return time.thread_time() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    set_threads(1)
    print(machine_line())
    print(load_line())
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(4096, 64, generator=g), torch.randint(0, 10, (4096,), generator=g)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "s.db"
        for batch in (16, 64):
            ratios, plain_t, tracked_t = [], [], []
            for rep in range(args.reps):
                order = ("plain", "tracked") if rep % 2 == 0 else ("tracked", "plain")
                times = {}
                for who in order:
                    if who == "plain":
                        times[who] = loop(x, y, args.epochs, batch, None)
                    else:
                        cfg = {"batch_size": batch, "n_train": len(y), "lr": 0.05}
                        with bl.track("bench", config=cfg, store=store) as run:
                            times[who] = loop(x, y, args.epochs, batch, run)
                ratios.append(times["tracked"] / times["plain"])
                plain_t.append(times["plain"])
                tracked_t.append(times["tracked"])
            steps = args.epochs * -(-len(y) // batch)
            ratio = median(ratios)
            rows.append([batch, steps, f"{median(plain_t):.3f}", f"{median(tracked_t):.3f}",
                         f"{ratio:.3f}", "PASS" if ratio <= 1.05 else "FAIL"])
    print_table(["batch", "steps", "plain CPU s", "tracked CPU s", "tracked/plain", "<= 1.05"], rows)
    print(load_line())


if __name__ == "__main__":
    main()
