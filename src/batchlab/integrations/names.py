"""Other tools' metric names -> batchlab's: ``train_loss``, ``train_acc``, ``val_loss``,
``val_acc``, ``lr``. Shared by the Lightning logger, the Keras callback and the importers, so a
Keras ``val_accuracy``, a Lightning ``lr-SGD`` and a TensorBoard ``Loss/val`` all land where the
report and the diagnosis look for them."""

from __future__ import annotations

import re

_VAL = {"val", "valid", "validation", "test", "eval", "dev"}
_ACC = {"acc", "accuracy"}
_SKIP = {"epoch", "step", "global_step", "iteration", "iterations"}


def batchlab_name(name: str) -> str | None:
    """batchlab's name for metric ``name``; None for counters that are not metrics (``epoch``).

    Names that are neither a loss, an accuracy nor a learning rate are kept as they are.
    """
    lowered = name.lower()
    if lowered in _SKIP:
        return None
    tokens = set(re.split(r"[/_\-\s.]+", lowered))
    if "lr" in tokens or lowered.startswith("lr-") or "learning" in tokens:
        return "lr"
    kind = "loss" if "loss" in tokens else "acc" if tokens & _ACC or lowered.endswith("accuracy") else None
    if kind is None:
        return name
    return f"{'val' if tokens & _VAL else 'train'}_{kind}"
