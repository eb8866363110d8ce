"""Ctrl-C at random moments of real commands: what a user's interruption leaves behind.

Each round starts a command as a terminal does (its own process group, SIGINT at its default),
sends SIGINT to the group after a random delay, and checks: the exit code is 130, or 0 when
the command had already finished (never -2, death by SIGINT); no traceback on stderr; every
exit 130 says one ``interrupted:`` line; the store opens intact. A sweep is then run again and
must end with every run finished (2 completed, 2 diverged) and each run's ``train_loss`` steps
1..n with no gap or repeat. Prints one line per round and the count of bad rounds.

    python bench/ctrl_c.py                    # 40 sweeps, Ctrl-C after 0.5-7 s (~20 min)
    python bench/ctrl_c.py --late             # Ctrl-C as the results table appears (4-5.3 s)
    python bench/ctrl_c.py --probes           # lr-find, recommend, noise-scale, throughput, demo
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SWEEP = """name = "fz"
[data]
name = "synthetic"
shape = [32]
classes = 5
size = 1200
[model]
name = "mlp"
hidden = [64]
[train]
epochs = 6
lr = 0.02
batch_size = 16
threads = 1
[sweep.grid]
"train.batch_size" = [16, 32]
"train.lr" = [0.02, 1e4]
"""
PROBES = [["lr-find", "--batch-sizes", "16,32"], ["recommend", "--batch-sizes", "16,32"],
          ["noise-scale", "--steps", "30"], ["throughput", "--batch-sizes", "8,16,32"],
          ["demo", "--epochs", "1"]]


def as_in_a_terminal() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # a background shell would have it ignored


def round_(folder: Path, args: list[str], delay: float) -> tuple[list[str], str]:
    """(what went wrong, a one-line summary) of one command cut by Ctrl-C after ``delay`` s."""
    from batchlab.store import Store

    spec, db = folder / "s.toml", folder / "s.db"
    spec.write_text(SWEEP)
    cmd = [sys.executable, "-m", "batchlab", args[0], *([] if args[0] == "demo" else [str(spec)]),
           *args[1:], "--store", str(db)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=folder, start_new_session=True, preexec_fn=as_in_a_terminal)
    time.sleep(delay)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    wrong = []
    if proc.returncode not in (0, 130):
        wrong.append(f"exit {proc.returncode}")
    if "Traceback" in err:
        wrong.append("traceback")
    if proc.returncode == 130 and "interrupted" not in err:
        wrong.append("exit 130 said nothing")
    if args[0] == "sweep":
        again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if again.returncode != 0:
            wrong.append(f"the rerun exited {again.returncode}")
    if db.exists():
        with Store(db) as st:
            st.check_intact()
            if args[0] == "sweep":
                runs = st.runs("fz")
                if sorted(r.status for r in runs) != ["completed", "completed", "diverged", "diverged"]:
                    wrong.append(f"after the rerun: {sorted(r.status for r in runs)}")
                for r in runs:
                    steps = st.metrics(r.id, ["train_loss"])["train_loss"].step.tolist()
                    if steps != list(range(1, len(steps) + 1)):
                        wrong.append(f"run {r.id}: train_loss steps not 1..n")
    last = err.strip().splitlines()[-1][:90] if err.strip() else ""
    return wrong, f"{' '.join(args[:3])} after {delay:.2f} s: exit {proc.returncode} {last}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--late", action="store_true",
                        help="one-worker sweeps, Ctrl-C at 4-5.3 s, as the results table appears")
    parser.add_argument("--probes", action="store_true", help="probe commands and demo, not sweeps")
    opts = parser.parse_args()
    rng = random.Random(opts.seed)
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(opts.rounds):
            folder = Path(tmp) / str(i)
            folder.mkdir()
            if opts.probes:
                args, delay = rng.choice(PROBES), rng.uniform(0.5, 8)
            else:
                workers = "1" if opts.late else rng.choice(["1", "2"])
                args = ["sweep", "--workers", workers]
                delay = rng.uniform(4.0, 5.3) if opts.late else rng.uniform(0.5, 7)
            wrong, line = round_(folder, args, delay)
            bad += bool(wrong)
            print(f"{i:3d} {'BAD ' + '; '.join(wrong) if wrong else 'ok'}: {line}", flush=True)
    print(f"{bad} bad of {opts.rounds} rounds")


if __name__ == "__main__":
    main()
