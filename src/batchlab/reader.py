"""``bl.open(store)``: read a store back in Python (experiments, runs, metrics).

Metrics come as numpy arrays (``Series``: step, value, epoch, examples, wall_time); tables as
lists of dicts, or pandas DataFrames when pandas is installed (it is optional: nothing here
imports it unless it is there). The store is opened read-only in spirit: nothing is written,
and a file that does not exist is an error, never a new empty store.
"""

from __future__ import annotations

import difflib
import importlib.util
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from batchlab.apistore import api_store_errors, store_path
from batchlab.errors import StoreError
from batchlab.events import FINAL_STATUSES
from batchlab.results import experiment_rows, run_row
from batchlab.store import Experiment, RunRecord, Series, Store


def has_pandas() -> bool:
    return importlib.util.find_spec("pandas") is not None


def frame(rows: list[dict[str, Any]]) -> Any:
    """``rows`` as a pandas DataFrame when pandas is installed, else ``rows`` unchanged."""
    if not has_pandas():
        return rows
    import pandas as pd

    return pd.DataFrame(rows)


class StoreReader:
    """A store opened for reading. Use as a context manager or call ``close()``."""

    def __init__(self, path: str | Path) -> None:
        self.path = store_path(path, "bl.open", default=False)
        if self.path.is_dir():  # "does not exist" would send the user looking for a path that does
            raise StoreError(f"store '{self.path}' is a folder, not a store file; pass the path "
                             f"of the store inside it, e.g. bl.open('{self.path / 'batchlab.db'}').")
        if not self.path.is_file():
            raise StoreError(f"store '{self.path}' does not exist; pass the path of a store a "
                             "sweep wrote (default batchlab.db in the folder it ran in).")
        with api_store_errors():  # the store's errors in the API's words (no --store flag)
            self._store = Store(self.path, create=False)

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> StoreReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def store(self) -> Store:
        """The underlying ``batchlab.store.Store`` (for everything this class does not wrap)."""
        return self._store

    def experiments(self) -> list[str]:
        """The experiments' names, oldest first."""
        return [e.name for e in self._store.experiments()]

    def experiment(self, name: str) -> Experiment:
        """One experiment's stored record (spec, created/updated, run counts by status)."""
        for e in self._store.experiments():
            if e.name == name:
                return e
        raise StoreError(f"no experiment '{name}' in '{self.path}'; it has: "
                         f"{', '.join(self.experiments()) or 'none'}.")

    def runs(self, experiment: str | None = None) -> Any:
        """The runs' table (one row per run: id, status, knobs, summary metrics) as a
        DataFrame when pandas is installed, else a list of dicts; all runs when no experiment."""
        if experiment is not None:
            self.experiment(experiment)  # an unknown name is an error, not an empty table
            return frame(experiment_rows(self._store, experiment))
        return frame([run_row(r) for r in self._store.runs()])

    def run(self, run_id: str) -> RunRecord:
        """A run's record (config, environment, summary, status) by its id or an id prefix."""
        matches = [r for r in self._store.runs() if r.id.startswith(run_id)]
        if len(matches) != 1:
            why = "matches no run" if not matches else f"matches {len(matches)} runs"
            raise StoreError(f"run id '{run_id}' {why} in '{self.path}'; copy an id from runs().")
        return matches[0]

    def metrics(self, run_id: str, names: str | Iterable[str] | None = None) -> dict[str, Series]:
        """A run's metrics by name as numpy arrays: ``names`` one name, several, or None for
        all. StoreError naming the run's metrics when the run has ended and one of ``names`` is
        not among them (an empty series would read as a metric never logged); a run not ended
        yet gives an empty series for a name it has not logged yet."""
        record = self.run(run_id)
        run = record.id
        if names is None:
            return self._store.metrics(run)
        wanted = [names] if isinstance(names, str) else list(names)
        if not all(isinstance(n, str) for n in wanted):
            raise StoreError(f"metric names must be strings, got {names!r}; pass one name "
                             "(db.metrics(run_id, 'val_acc')) or a list of them.")
        have = self._store.metric_names(run)
        # a run still training (or interrupted, to resume) may log the name later: polling a
        # live run for val_acc before its first evaluation reads an empty series
        if record.status in FINAL_STATUSES and (missing := [n for n in wanted if n not in have]):
            close = [c for n in missing for c in difflib.get_close_matches(n, have, n=1)]
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            raise StoreError(
                f"run {run} has no metric {', '.join(map(repr, missing))}; it has: "
                f"{', '.join(have) or 'none yet'}.{hint} Pass names from that list, or leave "
                "names out for all of them."
            )
        return self._store.metrics(run, wanted)

    def metrics_frame(self, run_id: str, names: str | Iterable[str] | None = None) -> Any:
        """A run's metrics in long form (metric, step, value, epoch, examples, wall_time): a
        DataFrame when pandas is installed, else a list of dicts."""
        rows = []
        for name, s in self.metrics(run_id, names).items():
            rows += [{"metric": name, "step": int(st), "value": float(v), "epoch": float(ep),
                      "examples": int(ex), "wall_time": float(w)}
                     for st, v, ep, ex, w in zip(s.step, s.value, s.epoch, s.examples,
                                                 s.wall_time, strict=True)]
        return frame(rows)


    def report(self, experiment: str, path: str | Path, target: float | None = None) -> Any:
        """Write ``experiment``'s HTML report to ``path`` as ``batchlab report`` does (figures
        in ``<stem>_files/``): a ``ReportResult``. ``target``: the validation accuracy that
        counts as reached (default: 95% of the best)."""
        from batchlab.report.report import write_report

        self.experiment(experiment)
        return write_report(self._store, experiment, path, target=target)


def open_store(path: str | Path) -> StoreReader:
    """Open a store for reading (``bl.open``); StoreError when it does not exist."""
    return StoreReader(path)
