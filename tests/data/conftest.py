"""The ``case`` fixture: every supported format, written in its real layout into tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_writers import CASE_NAMES, Case, make_case


@pytest.fixture(params=CASE_NAMES)
def case(request: pytest.FixtureRequest, tmp_path: Path) -> Case:
    return make_case(request.param, tmp_path)
