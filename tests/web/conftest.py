"""Fixtures of the dashboard tests: a small store and a dashboard serving it in a thread."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from web_helpers import serving
from web_stores import make_store


@pytest.fixture
def grid_db(tmp_path: Path) -> Path:
    path = tmp_path / "grid.db"
    make_store(path)
    return path


@pytest.fixture
def dashboard(grid_db: Path) -> Iterator[str]:
    with serving(grid_db) as url:
        yield url
