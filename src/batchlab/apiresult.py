"""What ``bl.sweep`` returns: the counts of its call, and the experiment's table, analysis,
figures, follow-up spec and report, each read from the store when asked for."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchlab.apistore import api_store_errors
from batchlab.errors import StoreError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from batchlab.analysis.experiment import ExperimentAnalysis
    from batchlab.nextspec import NextSpec
    from batchlab.report.report import ReportResult
    from batchlab.store import Store


@dataclass(frozen=True)
class SweepResult:
    """What ``bl.sweep`` did: counts, the runs' table, the analysis and the report.

    ``planned``/``skipped``/``trained``: runs in the sweep, already final in the store before
    the call (not trained again), and trained by this call. The table and the analysis are
    read from the store when asked for, so they include every run of the experiment.
    """

    experiment: str
    store: Path
    planned: int
    skipped: int
    trained: int

    @contextmanager
    def _opened(self) -> Iterator[Store]:
        """The store, opened for reading; its errors in the API's words (a store moved away
        since the sweep said "run a sweep first or pass --store PATH", a flag Python has not)."""
        from batchlab.store import Store

        self._check_present()
        with api_store_errors(), Store(self.store, create=False) as st:
            yield st

    def _check_present(self) -> None:
        if not self.store.is_file():
            raise StoreError(f"the store of sweep '{self.experiment}', '{self.store}', is gone "
                             "(moved or deleted since the sweep); bl.open(its new path) reads "
                             "the experiment there.")

    @property
    def rows(self) -> list[dict[str, Any]]:
        """One dict per run: id, status, batch size, LR, schedule, seed, summary metrics."""
        from batchlab.results import experiment_rows

        with self._opened() as st:
            return experiment_rows(st, self.experiment)

    @property
    def table(self) -> Any:
        """The runs as a pandas DataFrame when pandas is installed, else ``rows``."""
        from batchlab.reader import frame

        return frame(self.rows)

    @property
    def analysis(self) -> ExperimentAnalysis:
        """``batchlab.analysis.analyze_experiment`` of this experiment (diagnosis, best config,
        time to target, scaling fits, conclusions; ``.answer``: what to pick and why, the
        findings by question; each run's ``.verdict``: one label and one sentence)."""
        from batchlab.analysis.experiment import analyze_experiment

        with self._opened() as st:
            return analyze_experiment(st, self.experiment)

    def plot(self, what: str = "curves", facet: str | None = None) -> Figure:
        """A ``matplotlib.figure.Figure`` of the experiment: ``what="curves"`` (learning
        curves against epochs, steps, examples and wall time; colour = LR, dash = batch size)
        of one ``facet`` (what else the sweep varied; default the first), or "heatmaps"."""
        from batchlab.report.build import experiment_figure

        with self._opened() as st:
            return experiment_figure(st, self.experiment, what, facet)

    def next(self, path: str | Path | None = None) -> NextSpec:
        """Write the follow-up sweep the diagnosis calls for to ``path`` (default
        ``<experiment>-next.toml`` beside the store) and return it: ``.path`` (None when
        nothing needs changing, and then nothing is written), ``.changes`` (one line each, what
        and why), ``.text``. See ``batchlab.nextspec``; ``batchlab sweep`` of the file (or
        ``bl.sweep`` of its spec) adds the runs to this experiment."""
        from batchlab.nextspec import write_next

        self._check_present()
        with api_store_errors():
            return write_next(self.store, self.experiment, path)

    def report(self, path: str | Path, target: float | None = None) -> ReportResult:
        """Write the HTML report to ``path`` (figures in ``<stem>_files/`` beside it)."""
        from batchlab.reader import open_store

        self._check_present()
        with open_store(self.store) as db:
            return db.report(self.experiment, path, target=target)
