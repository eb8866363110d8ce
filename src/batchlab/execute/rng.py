"""The random state a function run saves with its checkpoint and gets back on resume.

A resumed run must draw the numbers an uninterrupted one would, so ``run.save`` stores the
torch, numpy, Python (and CUDA) generators beside the user's state and ``run.restore`` puts
them back.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def rng_state() -> dict[str, Any]:
    """Every generator a training step may draw from, copied."""
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "random": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Put back what ``rng_state`` took (CUDA's only where this process has CUDA)."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["random"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    """The run's seed in torch, numpy and random: a run is a function of its config."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)
