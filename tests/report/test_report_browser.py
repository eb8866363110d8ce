"""The report opened in a real headless browser (Debian's chromium): every figure decodes and
the console shows no error. Skipped when chromium is not installed.

How it works: the report's inline script runs on ``load``, counts the <img> elements whose
``naturalWidth > 0`` and writes ``data-images-ok="N/M"`` on <body> (and logs it to the console).
``chromium --headless --dump-dom`` prints the DOM after load, so the marker proves the page
rendered every figure; ``--enable-logging=stderr --v=0`` copies console messages to stderr,
where any "Uncaught" error or extra console message fails the test. Network access is cut off
(``--proxy-server`` to a dead port) so a stray external reference would fail to load and log.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = next((p for p in ("/usr/bin/chromium", shutil.which("chromium") or "",
                             shutil.which("chromium-browser") or "") if p and Path(p).exists()), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed "
                                "(apt-get install -y chromium)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--proxy-server=127.0.0.1:9", "--enable-logging=stderr", "--v=0"]


def chromium(html: Path, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *extra, html.as_uri()],
        capture_output=True, text=True, timeout=120)


def console_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def test_every_figure_renders_without_console_errors(made, tmp_path):
    proc = chromium(made.result.html, tmp_path, "--dump-dom")
    n = len(made.result.figures)
    marker = re.search(r'data-images-ok="(\d+)/(\d+)"', proc.stdout)
    assert marker, f"the page's load script did not run; stderr: {proc.stderr[-2000:]}"
    assert marker.groups() == (str(n), str(n))
    lines = console_lines(proc.stderr)
    assert lines and all(f"images ok {n}/{n}" in line for line in lines), lines
