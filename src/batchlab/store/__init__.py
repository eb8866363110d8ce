"""The metric store (SQLite). ``Store(path)`` opens or creates one."""

from batchlab.store.sqlite import (
    SCHEMA_VERSION,
    Experiment,
    ProbeRecord,
    RunRecord,
    Series,
    Store,
)

__all__ = ["SCHEMA_VERSION", "Experiment", "ProbeRecord", "RunRecord", "Series", "Store"]
