"""The way out of the command line is bounded: a shutdown that hangs after Ctrl-C is cut short
with the exit code, and a bad spec is refused before the seconds of importing torch."""

import signal
import subprocess
import sys
import time

import pytest
from cli_helpers import as_module, cli_without_torch
from shell_signals import sigint_as_in_a_terminal

SCRIPT = """
import atexit, sys, threading, time
from batchlab.cli.common import exit_within
atexit.register(lambda: time.sleep(600))          # a shutdown step that never returns
threading.Thread(target=lambda: time.sleep(600)).start()  # and a thread nobody ends
print("stored", flush=True)
exit_within(130, grace=1.0)
sys.exit(130)
"""


def test_a_hanging_shutdown_is_cut_short_with_the_exit_code():
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert done.returncode == 130 and done.stdout == "stored\n"
    assert time.monotonic() - start < 30  # the hang alone would take 600 s


def test_a_normal_shutdown_is_not_held_up_by_the_grace():
    quick = SCRIPT.replace("atexit.register", "(lambda f: None)").replace(
        "threading.Thread(target=lambda: time.sleep(600)).start()", "").replace("grace=1.0", "grace=60")
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-c", quick], capture_output=True, text=True, timeout=60)
    assert done.returncode == 130 and time.monotonic() - start < 30


@pytest.mark.parametrize("command", ["sweep", "run", "lr-find", "max-batch", "throughput",
                                     "noise-scale", "recommend"])
@pytest.mark.parametrize("bad", ["missing file", "bad --set"])
def test_a_bad_spec_is_refused_before_torch_is_imported(tmp_path, command, bad):
    """A typo in the spec or a --set costs well under a second, not the seconds of importing
    torch first (the probe commands used to import it before reading the spec)."""
    spec = tmp_path / "s.toml"
    spec.write_text('[data]\nname = "synthetic"\n[model]\nname = "mlp"\n')
    args = ([tmp_path / "nope.toml"] if bad == "missing file"
            else [spec, "--set", "train.no_such_key=1"])
    last, res = cli_without_torch(command, *args, "--store", tmp_path / "s.db")
    assert last == "EXIT 2 NO-TORCH", res.stdout + res.stderr
    assert ("does not exist" if bad == "missing file" else "no_such_key") in res.stderr
    assert not (tmp_path / "s.db").exists()


SLOW_SHUTDOWN = """
import atexit, sys, time
from batchlab.cli import main

def unload():  # as torch's finalizers take a while when the interpreter exits
    print("shutting down", flush=True)
    time.sleep(5)

atexit.register(unload)
main()
"""


def test_ctrl_c_during_the_shutdown_after_the_work_keeps_the_exit_code_and_prints_nothing(tmp_path):
    """The command's work is done and said: a Ctrl-C while the interpreter unloads neither
    prints a traceback nor ends the process by SIGINT (-2 to its caller)."""
    argv, environ = as_module(tmp_path, "slowexit", SLOW_SHUTDOWN)
    proc = subprocess.Popen([*argv, "--version"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=environ,
                            preexec_fn=sigint_as_in_a_terminal)
    try:
        lines = iter(proc.stdout.readline, "")
        assert any(line.startswith("shutting down") for line in lines)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "KeyboardInterrupt" not in err and "Traceback" not in err
