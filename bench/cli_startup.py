"""How long the browsing commands take to answer: ``--help``, ``ls``, ``show``, ``--version``.

Each command runs as a fresh process (as a user types it), interleaved with two references in
the same rounds: a bare ``python -c pass`` (the interpreter's own start-up) and
``python -c "import torch"`` (what every command used to pay). Prints the median wall time
of each over the rounds, its ratio to importing torch, and PASS/FAIL against 0.5 s. The store
it browses is written directly (three runs, no training), so torch is never needed here.

    python bench/cli_startup.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 0.5


def make_store(path: Path) -> str:
    """A store with one finished run; returns its id."""
    from batchlab.events import MetricRows, RunEnded, RunStarted
    from batchlab.plan import plan_runs
    from batchlab.spec import spec_from_dict
    from batchlab.store import Store

    spec = spec_from_dict({"name": "bench", "sweep": {"grid": {"train.batch_size": [16, 32, 64]}}})
    runs = plan_runs(spec)
    with Store(path) as st:
        st.add_experiment("bench", spec.model_dump(mode="json"), runs)
        rid = runs[0].run_id
        st.record(RunStarted(rid, 100, 0))
        st.record(MetricRows(rid, [("train_loss", s, 1 / s, s / 10, 32 * s, 0.01 * s)
                                   for s in range(1, 101)], 100))
        st.record(RunEnded(rid, "completed", 100, 1.0, {"final_val_acc": 0.9}))
    return rid


def timed(argv: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])])}
    start = time.perf_counter()
    res = subprocess.run(argv, capture_output=True, env=env, timeout=120)
    elapsed = time.perf_counter() - start
    if res.returncode != 0:
        raise RuntimeError(f"{argv} exited {res.returncode}: {res.stderr.decode()[-500:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, "
          f"load average at start {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "b.db"
        rid = make_store(db)
        cli = [sys.executable, "-m", "batchlab"]
        cases = {
            "python -c pass (reference)": [sys.executable, "-c", "pass"],
            "python -c 'import torch' (reference)": [sys.executable, "-c", "import torch"],
            "batchlab --help": [*cli, "--help"],
            "batchlab --version": [*cli, "--version"],
            "batchlab ls": [*cli, "ls", "--store", str(db)],
            "batchlab ls bench": [*cli, "ls", "bench", "--store", str(db)],
            "batchlab show RUN": [*cli, "show", rid, "--store", str(db)],
        }
        times: dict[str, list[float]] = {k: [] for k in cases}
        for _ in range(args.rounds):  # interleaved: a load spike hits every case alike
            for name, argv in cases.items():
                times[name].append(timed(argv))
    torch_s = statistics.median(times["python -c 'import torch' (reference)"])
    print(f"\n{'command':40} {'median s':>9} {'min s':>7} {'x import torch':>15}  target")
    for name, values in times.items():
        med = statistics.median(values)
        verdict = "" if "reference" in name else ("PASS" if med < TARGET_S else "FAIL")
        print(f"{name:40} {med:9.3f} {min(values):7.3f} {med / torch_s:15.2f}  {verdict}")
    print(f"\nload average at end {os.getloadavg()[0]:.2f}; target: each command < {TARGET_S} s")


if __name__ == "__main__":
    main()
