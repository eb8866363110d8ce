"""The way out after Ctrl-C is bounded: a shutdown that hangs is cut short with the exit code."""

import subprocess
import sys
import time

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
