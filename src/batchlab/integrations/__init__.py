"""Optional integrations, each importing its framework only when used.

- ``batchlab.integrations.lightning.BatchlabLogger``: a PyTorch Lightning logger (extra ``lightning``).
- ``batchlab.integrations.keras.BatchlabCallback``: a Keras 3 callback (extra ``keras``).
- ``batchlab.integrations.tensorboard`` / ``.csvlog``: import TensorBoard event folders
  (extra ``tensorboard``) and Keras ``CSVLogger`` files into a store.
"""

from __future__ import annotations

import importlib
from types import ModuleType

_MODULES = ("lightning", "keras", "tensorboard", "csvlog")


def __getattr__(name: str) -> ModuleType:
    if name in _MODULES:
        return importlib.import_module(f"batchlab.integrations.{name}")
    raise AttributeError(f"module 'batchlab.integrations' has no attribute {name!r}")
