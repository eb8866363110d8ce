"""The documentation site builds with ``mkdocs build --strict`` (every page in the nav, every
link and anchor resolved, the API reference generated from the docstrings). CI installs the
``docs`` extra, so this runs there; it is skipped only where mkdocs is not installed."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from docblocks import ROOT

pytest.importorskip("mkdocs")
pytest.importorskip("mkdocstrings_handlers.python")
pytest.importorskip("material")


def test_the_site_builds_strictly(tmp_path):
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    out = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f",
                          str(ROOT / "mkdocs.yml"), "-d", str(site)],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-4000:]
    api = (site / "api" / "index.html").read_text()
    # generated from the docstrings: the signature and the contract of bl.lr_find
    assert "batchlab.api.lr_find" in api and "miniatures of the run" in api
    for page in sorted((ROOT / "docs").glob("*.md")):
        name = "index.html" if page.stem == "index" else f"{page.stem}/index.html"
        assert (site / name).is_file(), name
    assert (site / "report.png").is_file() and not (site / "dashboard_png.py").exists()
