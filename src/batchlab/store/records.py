"""What the store hands back: plain frozen records of runs, metric series, probes, experiments."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class RunRecord:
    """A run as stored. ``point`` is the sweep point within the experiment it was read through."""

    id: str
    status: str
    config: dict[str, Any]
    environment: dict[str, Any]
    created: float
    started: float | None
    finished: float | None
    wall_time: float | None
    steps: int | None
    total_steps: int | None
    progress_step: int
    attempts: int  # how many times training started (1 + resumes and retries)
    error: str | None
    summary: dict[str, Any]
    point: dict[str, Any]


@dataclass(frozen=True)
class Series:
    """One metric of one run, as aligned numpy arrays sorted by step."""

    step: np.ndarray
    value: np.ndarray
    epoch: np.ndarray
    examples: np.ndarray
    wall_time: np.ndarray


@dataclass(frozen=True)
class ProbeRecord:
    """A stored probe result (LR range test, max batch, throughput, noise scale, ...)."""

    id: int
    experiment: str
    kind: str
    created: float
    config: dict[str, Any]
    result: dict[str, Any]


@dataclass(frozen=True)
class Experiment:
    name: str
    spec: dict[str, Any]
    created: float
    updated: float
    counts: dict[str, int]
