"""batchlab: a laboratory for batch size and learning rate.

``import batchlab as bl`` is cheap: the Python API (``bl.sweep``, ``bl.lr_find``,
``bl.max_batch``, ``bl.throughput``, ``bl.noise_scale``, ``bl.recommend``, ``bl.open``) is
imported, with torch, on first use (module ``__getattr__``, PEP 562). There is no
``bl.report`` function: ``batchlab.report`` is the report subpackage; write a report with
``result.report(path)`` or ``bl.open(store).report(experiment, path)``.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

# public name -> (module, attribute); loaded on first access
_LAZY = {
    "sweep": ("batchlab.api", "sweep"),
    "lr_find": ("batchlab.api", "lr_find"),
    "max_batch": ("batchlab.api", "max_batch"),
    "throughput": ("batchlab.api", "throughput"),
    "noise_scale": ("batchlab.api", "noise_scale"),
    "recommend": ("batchlab.api", "recommend"),
    "SweepResult": ("batchlab.apiresult", "SweepResult"),
    "DryRun": ("batchlab.execute.dryrun", "DryRun"),
    "open": ("batchlab.reader", "open_store"),
    "BatchlabError": ("batchlab.errors", "BatchlabError"),
    "track": ("batchlab.track", "track"),
    "integrations": ("batchlab.integrations", None),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'batchlab' has no attribute {name!r}")
    import importlib

    module, attr = _LAZY[name]
    loaded = importlib.import_module(module)
    value = loaded if attr is None else getattr(loaded, attr)
    # later accesses skip this function; for "track" this also rebinds the name that importing
    # the submodule batchlab.track bound to the module
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
