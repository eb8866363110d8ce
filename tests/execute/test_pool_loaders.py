"""A local pool's run workers start their ``data.workers`` loader processes, and every one of
those processes is gone once the driver has ended: normally, by Ctrl-C, or killed with -9.

The proof that loader processes decode is a log, not a timing: the driver runs from a script
(``PROBE``) that wraps ``batchlab.data.images.read_image`` (the one decoder of every image
pipeline, wrapped before any module imports it) to append "decode <pid> <parent pid>", and that
each spawned run worker re-imports as its ``__mp_main__`` (so the wrapper is there too, and in
the loader processes it forks), writing "worker <pid>" as it does.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from shell_signals import sigint_as_in_a_terminal
from test_faults import _cmdline, wait_for

from batchlab.execute.local import LocalPoolExecutor, _Pool

sys.path.insert(0, str(Path(__file__).parents[1] / "data"))
from image_writers import write_separable_folder  # noqa: E402

PROBE = """\
import os, sys
import batchlab.data.images as images

LOG = os.environ["BATCHLAB_DECODE_LOG"]

def note(line):
    with open(LOG, "a") as fh:  # one short append: whole lines, whatever the process
        fh.write(line + "\\n")

def logged(real):
    def read(*args, **kwargs):
        note(f"decode {os.getpid()} {os.getppid()}")
        return real(*args, **kwargs)
    return read

images.read_image = logged(images.read_image)
if __name__ == "__mp_main__":  # a spawned run worker importing this script as its main
    note(f"worker {os.getpid()}")
if __name__ == "__main__":
    import runpy
    sys.argv = ["batchlab", *sys.argv[1:]]
    runpy.run_module("batchlab", run_name="__main__")
"""

SPEC = """
name = "pooled"
[data]
name = "image_folder"
path = "{root}"
image_size = 8
pipeline = "stream"
normalize = false
workers = 2
cache_dir = "{cache}"
[model]
name = "mlp"
hidden = [8]
[train]
epochs = {epochs}
lr = 0.05
threads = 1
[sweep.grid]
"train.batch_size" = [8, 16]
"""


class Decodes:
    """What the log says: the run workers' pids, and (pid, parent pid) of each decode."""

    def __init__(self, log: Path) -> None:
        lines = [ln.split() for ln in log.read_text().splitlines()] if log.exists() else []
        self.workers = {int(ln[1]) for ln in lines if ln[0] == "worker"}
        self.decodes = [(int(ln[1]), int(ln[2])) for ln in lines if ln[0] == "decode"]

    def by_loaders(self) -> set[int]:
        """The pids of processes that decoded for a run worker: its children."""
        return {pid for pid, parent in self.decodes if parent in self.workers}

    def loaders_of(self) -> dict[int, set[int]]:
        """Run worker -> its children that decoded."""
        return {w: {pid for pid, parent in self.decodes if parent == w} for w in self.workers}


def both_decoding(seen: Decodes) -> bool:
    loaders = seen.loaders_of()
    return len(loaders) == 2 and all(len(pids) >= 2 for pids in loaders.values())


def running(pid: int) -> bool:
    """Alive and ours (not a zombie nobody reaped yet, not a reused pid)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z" and "spawn_main" in _cmdline(pid)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return write_separable_folder(tmp_path_factory.mktemp("pool") / "img", per_class=20)


def start_sweep(tmp_path: Path, folder: Path, epochs: int) -> tuple[subprocess.Popen, Path]:
    (tmp_path / "probe.py").write_text(PROBE)
    (tmp_path / "s.toml").write_text(SPEC.format(root=folder, cache=tmp_path / "cache",
                                                 epochs=epochs))
    log = tmp_path / "decodes.log"
    cmd = [sys.executable, str(tmp_path / "probe.py"), "sweep", str(tmp_path / "s.toml"),
           "--store", str(tmp_path / "s.db"), "--workers", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env={**os.environ, "BATCHLAB_DECODE_LOG": str(log)},
                            preexec_fn=sigint_as_in_a_terminal)
    return proc, log


def test_pool_workers_decode_in_their_loader_processes_and_leave_none(tmp_path, folder):
    proc, log = start_sweep(tmp_path, folder, epochs=2)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert out.count("completed") == 2
    seen = Decodes(log)
    assert len(seen.workers) == 2
    # every image a run read was decoded by one of its loader processes, none by a run worker
    assert not [d for d in seen.decodes if d[0] in seen.workers]
    loaders = seen.by_loaders()
    assert len(loaders) >= 2 and not loaders & seen.workers
    # each run worker that trained decoded in (at least) its training loader's two processes
    assert all(len(pids) >= 2 for pids in seen.loaders_of().values() if pids)
    # the driver joined its workers, and they joined their loader processes
    assert [p for p in seen.workers | loaders if running(p)] == []


@pytest.mark.parametrize("end", ["ctrl-c", "kill -9"])
def test_no_worker_or_loader_process_outlives_an_ended_driver(tmp_path, folder, end):
    proc, log = start_sweep(tmp_path, folder, epochs=500)
    try:
        # both run workers train, each decoding in (at least) two loader processes
        assert wait_for(lambda: both_decoding(Decodes(log)), 120), \
            (log.read_text() if log.exists() else "no log")[-2000:]
        if end == "ctrl-c":
            os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == 130, err
            assert "interrupted" in err
        else:
            os.kill(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=10)
        seen = Decodes(log)
        ours = seen.workers | seen.by_loaders()
        assert len(ours) >= 6  # 2 run workers, each with its 2 loader processes
        if end == "ctrl-c":  # the driver waited for its workers, which waited for theirs
            assert [p for p in ours if running(p)] == []
        else:  # orphans notice their driver's death and go, loader processes with them
            assert wait_for(lambda: not any(running(p) for p in ours), 30), \
                [(p, _cmdline(p)) for p in ours if running(p)]
    finally:
        if proc.poll() is None:
            proc.kill()


def deaf_to_sigterm(ready) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    ready.set()
    while True:
        time.sleep(1)


def test_closing_the_pool_kills_a_worker_that_ignores_sigterm():
    """Workers are not daemonic, so multiprocessing's exit handler would wait for one forever:
    closing the pool must end it, whatever it does."""
    ctx = mp.get_context("fork")  # the child only sleeps: no torch, no threads in it
    pool = _Pool(LocalPoolExecutor(1), ctx, lambda: None, lambda event: None)
    ready = ctx.Event()
    deaf = ctx.Process(target=deaf_to_sigterm, args=(ready,))
    deaf.start()
    pool.procs[0] = deaf
    try:
        assert ready.wait(60)
        pool.close()
        assert not deaf.is_alive() and deaf.exitcode == -signal.SIGKILL
    finally:
        if deaf.is_alive():  # so that a failure here does not hang the test run at its exit
            deaf.kill()
