"""Shared fixtures: one tiny real sweep (with probes) and its report, made once per session."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from report_stores import add_probes, real_probe_results, run_tiny_sweep

from batchlab.report import ReportResult, write_report
from batchlab.store import Store


@dataclass(frozen=True)
class Made:
    store_path: Path
    result: ReportResult
    html: str


@pytest.fixture(scope="session")
def probe_results() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """Real results of the four probes on the tiny spec (computed once)."""
    return real_probe_results()


@pytest.fixture(scope="session")
def sweep_store_path(tmp_path_factory: pytest.TempPathFactory, probe_results) -> Path:
    path = tmp_path_factory.mktemp("sweep") / "s.db"
    with Store(path) as store:
        run_tiny_sweep(store)
        add_probes(store, "tiny", probe_results)
    return path


@pytest.fixture(scope="session")
def made(sweep_store_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Made:
    out = tmp_path_factory.mktemp("report") / "report.html"
    with Store(sweep_store_path) as store:
        result = write_report(store, "tiny", out)
    return Made(sweep_store_path, result, out.read_text(encoding="utf-8"))


@pytest.fixture
def store(sweep_store_path: Path) -> Iterator[Store]:
    with Store(sweep_store_path) as s:
        yield s
