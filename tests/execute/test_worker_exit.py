"""Workers (and the resource tracker) exit within seconds of their driver's death, at any
moment: here the driver is killed the instant its workers appear, before they take a task."""

import os
import signal
import subprocess

from test_faults import _cmdline, children, spec_file, sweep_cmd, wait_for  # noqa: F401


def alive(pid):
    return os.path.exists(f"/proc/{pid}") and (
        "spawn_main" in _cmdline(pid) or "resource_tracker" in _cmdline(pid))


def workers_of(pid):
    return [k for k in children(pid) if "spawn_main" in _cmdline(k)
            and "resource_tracker" not in _cmdline(k)]


def test_workers_exit_when_the_driver_is_killed_before_their_first_task(tmp_path, spec_file):  # noqa: F811
    db = tmp_path / "s.db"
    for _ in range(2):  # twice: the second driver meets the first one's leftovers, if any
        proc = subprocess.Popen(sweep_cmd(spec_file, db, 2), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        assert wait_for(lambda proc=proc: len(workers_of(proc.pid)) >= 2, 120)
        kids = children(proc.pid)  # the workers and the resource tracker
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        assert wait_for(lambda kids=kids: not any(alive(k) for k in kids), 30), \
            [(k, _cmdline(k)) for k in kids if alive(k)]
