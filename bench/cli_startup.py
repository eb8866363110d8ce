"""How long the browsing commands take to answer: ``--help``, ``ls``, ``show``, ``--version``.

Each command runs as a fresh process (as a user types it), interleaved with two references in
the same rounds: a bare ``python -c pass`` (the interpreter's own start-up) and
``python -c "import torch"`` (what every command used to pay). Prints the median wall and CPU
time of each over the rounds, their ratios to importing torch, and PASS/FAIL of the wall time
against 0.5 s (on a busy machine read the CPU column: wall time includes waiting for a core). The store
it browses is written directly (three runs, no training), so torch is never needed here.

    python bench/cli_startup.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import os
import resource
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


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one run of ``argv``; CPU time is the steadier on a busy machine."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])])}
    cpu, start = _children_cpu(), time.perf_counter()
    res = subprocess.run(argv, capture_output=True, env=env, timeout=120)
    elapsed = time.perf_counter() - start
    if res.returncode != 0:
        raise RuntimeError(f"{argv} exited {res.returncode}: {res.stderr.decode()[-500:]}")
    return elapsed, _children_cpu() - cpu


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
        times: dict[str, list[tuple[float, float]]] = {k: [] for k in cases}
        for _ in range(args.rounds):  # interleaved: a load spike hits every case alike
            for name, argv in cases.items():
                times[name].append(timed(argv))
    wall = {k: statistics.median(w for w, _ in v) for k, v in times.items()}
    cpu = {k: statistics.median(c for _, c in v) for k, v in times.items()}
    torch_ref = "python -c 'import torch' (reference)"
    print(f"\n{'command':40} {'wall s':>7} {'CPU s':>6} {'wall x torch':>13} {'CPU x torch':>12}"
          "  target (wall)")
    for name in times:
        verdict = "" if "reference" in name else ("PASS" if wall[name] < TARGET_S else "FAIL")
        print(f"{name:40} {wall[name]:7.3f} {cpu[name]:6.3f} {wall[name] / wall[torch_ref]:13.2f} "
              f"{cpu[name] / cpu[torch_ref]:12.2f}  {verdict}")
    print(f"\nload average at end {os.getloadavg()[0]:.2f}; target: each command < {TARGET_S} s")


if __name__ == "__main__":
    main()
